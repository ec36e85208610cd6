"""``/metrics`` and ``/health`` on the API's host and port.

Both are unauthenticated, as exporters and health checks usually are: they reveal counts,
command names and uuids, never names, tenants' data or secrets. Operators who do not want them
reachable from outside keep them off the public listener (see docs/operations.md).
"""
from __future__ import annotations

import orjson
from flask import Blueprint, Response, current_app

from . import health, metrics

bp = Blueprint("observability", __name__)


def _state():  # noqa: ANN202 - AppState
    return current_app.extensions["cloudstack_kms"]


@bp.route("/metrics", methods=["GET"])
def metrics_view() -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST  # imported late: see metrics._Metrics
    return Response(metrics.exposition(_state()), status=200, content_type=CONTENT_TYPE_LATEST)


@bp.route("/health", methods=["GET"])
def health_view() -> Response:
    state = _state()
    ping = state.services.get("health_ping")
    if ping is None:
        ping = state.services.setdefault("health_ping", health.DatabasePing(state.db))
    healthy, body = health.check(state, ping)
    return Response(orjson.dumps(body), status=200 if healthy else 503, content_type="application/json",
                    headers={"Cache-Control": "no-store"})
