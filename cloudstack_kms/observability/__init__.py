"""Monitoring: Prometheus metrics (``/metrics``), the health check (``/health``) and the
background probe of HSM profiles. Services may import :mod:`.metrics` (it knows nothing of
Flask or the API); :mod:`.routes` is the web side and is imported by the application only."""
