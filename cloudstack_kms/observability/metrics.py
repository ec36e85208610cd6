"""Prometheus metrics of one server, in gunicorn's multi-process mode.

Counters and histograms live in this module and are updated where things happen (one counter
increment and one histogram observation per API request; a histogram observation per provider
call). Under ``cloudstack-kms serve`` ``PROMETHEUS_MULTIPROC_DIR`` is set before the workers
fork, so each worker writes its values to its own memory-mapped files there and a scrape, served
by any worker, sums them (:func:`exposition`). Without it (an app built in-process) the values
stay in this process.

Gauges of shared state (jobs, rewrap backlog) are computed when scraped, from the database, by
:class:`StateCollector`: cheap aggregate queries, never one per request. HSM reachability comes
from this process's probe (:mod:`.hsm_probe`).

Labels are bounded and carry nothing a tenant owns beyond uuids: command names known to the
registry (anything else is ``unknown``), error codes, KMS-key and HSM-profile uuids, KEK
version numbers. Never names, accounts or secrets.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Callable, Iterable

from sqlalchemy import func, select

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: The ``errorcode`` label of a successful request (CloudStack has no code for success).
SUCCESS_CODE = "0"
#: The ``command`` label of a request naming no known command (bounded label values).
UNKNOWN_COMMAND = "unknown"


class _Metrics:
    """The metrics this process records. Made on first use, and prometheus_client imported only
    then: the library picks its value storage (memory, or files for several processes) when it is
    first imported, and ``serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` after modules importing this
    one may already have been loaded (``quickstart`` runs ``db init`` first)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        # Not prometheus_client's global registry: this one serves the single-process case; in
        # multi-process mode the files are the registry.
        self.registry = CollectorRegistry(auto_describe=True)
        self.api_requests = Counter(
            "kms_api_requests", "API requests answered, by command and CloudStack error code (0: success)",
            ["command", "errorcode"], registry=self.registry)
        self.api_latency = Histogram(
            "kms_api_request_duration_seconds", "Time to answer an API request, by command", ["command"],
            registry=self.registry, buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.provider_latency = Histogram(
            "kms_provider_operation_duration_seconds", "Time of one attempt of a KMS provider operation, by HSM "
            "profile uuid and operation", ["hsmprofileid", "operation"], registry=self.registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30))
        self.provider_errors = Counter(
            "kms_provider_operation_errors", "KMS provider operation attempts that raised, by HSM profile uuid and "
            "operation", ["hsmprofileid", "operation"], registry=self.registry)
        # Bulk work (rewrap, migration) handles thousands of keys a second: an observation per key
        # (a lock and a file write each in multi-process mode) would cost a third of its CPU.
        # It adds up time and keys per chunk instead: rate(seconds) / rate(keys) is the mean.
        self.bulk_seconds = Counter(
            "kms_provider_bulk_seconds", "Time spent in KMS provider calls of bulk work (rewrap, migration), by HSM "
            "profile uuid and operation", ["hsmprofileid", "operation"], registry=self.registry)
        self.bulk_keys = Counter(
            "kms_provider_bulk_keys", "Keys handled by KMS provider calls of bulk work (rewrap, migration), by HSM "
            "profile uuid and operation", ["hsmprofileid", "operation"], registry=self.registry)
        self.write_conflicts = Counter(
            "kms_db_write_conflicts", "Transactions that lost a write conflict (deadlock, lock wait timeout, Galera "
            "certification) and were run again, or (claim) found the work taken, by where", ["where"],
            registry=self.registry)
        # labels() validates and locks on every call; children are cached in plain dicts instead,
        # so a request costs one dict lookup, one increment and one observation.
        self.request_children: dict[tuple[str, int], tuple[Any, Any]] = {}
        self.provider_children: dict[tuple[str, str], tuple[Any, Any]] = {}


_metrics: _Metrics | None = None
_metrics_lock = threading.Lock()


def _get() -> _Metrics:
    global _metrics
    if _metrics is None:
        with _metrics_lock:
            if _metrics is None:
                _metrics = _Metrics()
    return _metrics


def record_request(command: str, status: int, seconds: float) -> None:
    """Count an answered API request. ``status`` is the HTTP status, which CloudStack makes equal
    to ``errorcode``; 200 is recorded as ``0``. ``command`` must be a bounded name."""
    m = _metrics or _get()
    key = (command, status)
    children = m.request_children.get(key)
    if children is None:
        code = SUCCESS_CODE if status == 200 else str(status)
        children = m.request_children.setdefault(key, (m.api_requests.labels(command, code),
                                                       m.api_latency.labels(command)))
    children[0].inc()
    children[1].observe(seconds)


def record_provider_call(profile_uuid: str, operation: str, seconds: float, failed: bool) -> None:
    m = _metrics or _get()
    key = (profile_uuid, operation)
    children = m.provider_children.get(key)
    if children is None:
        children = m.provider_children.setdefault(key, (m.provider_latency.labels(profile_uuid, operation),
                                                        m.provider_errors.labels(profile_uuid, operation)))
    children[0].observe(seconds)
    if failed:
        children[1].inc()


def record_write_conflict(where: str) -> None:
    """Count a write conflict that was handled (``where``: a fixed word such as ``request``)."""
    (_metrics or _get()).write_conflicts.labels(where).inc()


def record_bulk(profile_uuid: str, operation: str, seconds: float, keys: int, errors: int = 0) -> None:
    """Count one chunk of bulk provider work: ``keys`` calls of ``operation`` that took ``seconds``
    in all, ``errors`` of them failed."""
    m = _metrics or _get()
    m.bulk_seconds.labels(profile_uuid, operation).inc(seconds)
    m.bulk_keys.labels(profile_uuid, operation).inc(keys)
    if errors:
        m.provider_errors.labels(profile_uuid, operation).inc(errors)


class BulkTimer:
    """Times the calls of one chunk of bulk work per (profile, operation), then records them
    with :func:`record_bulk` in one go."""

    def __init__(self) -> None:
        self._totals: dict[tuple[str, str], list] = {}

    def add(self, profile_uuid: str, operation: str, seconds: float, failed: bool = False) -> None:
        total = self._totals.setdefault((profile_uuid, operation), [0.0, 0, 0])
        total[0] += seconds
        total[1] += 1
        total[2] += failed

    def record(self) -> None:
        for (profile_uuid, operation), (seconds, keys, errors) in self._totals.items():
            record_bulk(profile_uuid, operation, seconds, keys, errors)
        self._totals.clear()


# ------------------------------------------------------------------ providers
#: Provider methods timed, with the operation label each is recorded under. Each takes the
#: :class:`~cloudstack_kms.providers.base.ProfileConfig` it works in as first argument.
TIMED_OPERATIONS = {"wrap": "wrap", "unwrap": "unwrap", "generate_and_wrap": "generate", "rewrap": "rewrap",
                    "create_kek": "create_kek", "delete_kek": "delete_kek", "kek_available": "kek_available",
                    "health_check": "health_check"}


class InstrumentedProvider:
    """A provider whose profile-bound calls are timed (each attempt: the retry wrapper calls
    through this) and whose failures are counted. Everything else is the provider itself."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        # Read on every provider call by the retry-mode choice: plain attributes, not __getattr__.
        self.name = inner.name
        self.runs_inline = inner.runs_inline
        self.honours_deadline = inner.honours_deadline

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _timed(method: str, operation: str) -> Callable[..., Any]:
    def call(self: InstrumentedProvider, profile: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        failed = True
        try:
            result = getattr(self.inner, method)(profile, *args, **kwargs)
            failed = False
            return result
        finally:
            record_provider_call(profile.uuid, operation, time.perf_counter() - started, failed)
    call.__name__ = method
    return call


for _method, _operation in TIMED_OPERATIONS.items():
    setattr(InstrumentedProvider, _method, _timed(_method, _operation))


# ------------------------------------------------------------------ scrape-time state
class StateCollector:
    """Gauges read from the database when scraped, plus this process's HSM probe results.

    A database that cannot be read makes ``kms_database_up`` 0 and leaves the database gauges
    out; the scrape itself still succeeds.
    """

    def __init__(self, state: Any) -> None:
        self.state = state

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import GaugeMetricFamily

        from ..models import AsyncJob
        from ..models.base import utcnow
        from ..models.jobs import JOB_IN_PROGRESS
        from ..models.kms import PREVIOUS, KekVersion, KmsKey, WrappedKey

        up = GaugeMetricFamily("kms_database_up", "1 when the database answered this scrape's queries")
        try:
            with self.state.db.transaction(readonly=True) as s:
                open_jobs = (AsyncJob.removed.is_(None), AsyncJob.job_status == JOB_IN_PROGRESS)
                queued, oldest = s.execute(select(func.count(), func.min(AsyncJob.created)).where(
                    *open_jobs, AsyncJob.job_executing_msid.is_(None))).one()
                running = s.scalar(select(func.count()).select_from(AsyncJob).where(
                    *open_jobs, AsyncJob.job_executing_msid.is_not(None))) or 0
                backlog = s.execute(
                    select(KmsKey.uuid, KekVersion.version_number, func.count(WrappedKey.id))
                    .select_from(WrappedKey)
                    .join(KekVersion, WrappedKey.kek_version_id == KekVersion.id)
                    .join(KmsKey, KekVersion.kms_key_id == KmsKey.id)
                    .where(KekVersion.status == PREVIOUS, WrappedKey.removed.is_(None))
                    .group_by(KmsKey.uuid, KekVersion.version_number)).all()
        except Exception as exc:  # noqa: BLE001 - a scrape must answer; the gauge says why it is short
            log.warning("metrics: database not readable (%s)", type(exc).__name__)
            up.add_metric([], 0)
            yield up
        else:
            up.add_metric([], 1)
            yield up
            yield GaugeMetricFamily("kms_async_jobs_queued", "Async jobs waiting for a worker", value=queued or 0)
            yield GaugeMetricFamily("kms_async_jobs_running", "Async jobs claimed by a server and in progress",
                                    value=running)
            # Against this host's clock, the one job rows are stamped with (naive UTC).
            age = max(0.0, (utcnow() - oldest.replace(tzinfo=None)).total_seconds()) if oldest is not None else 0.0
            yield GaugeMetricFamily("kms_async_job_oldest_queued_age_seconds",
                                    "Age of the oldest queued async job (0 when none is queued)", value=age)
            gauge = GaugeMetricFamily("kms_rewrap_backlog", "Wrapped keys still under a Previous KEK version, by "
                                      "KMS key uuid and version number", labels=["kmskeyid", "version"])
            for key_uuid, version, count in backlog:
                gauge.add_metric([key_uuid, str(version)], count)
            yield gauge
        reach = GaugeMetricFamily("kms_hsm_profile_reachable", "1 when the last background health check of the "
                                  "HSM profile succeeded, by HSM profile uuid", labels=["hsmprofileid"])
        probe = self.state.services.get("hsm_probe")
        for uuid, ok in sorted((probe.results() if probe is not None else {}).items()):
            reach.add_metric([uuid], 1 if ok else 0)
        yield reach


# ------------------------------------------------------------------ exposition
def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


_scrape_lock = threading.Lock()


def exposition(state: Any) -> bytes:
    """The text exposition of every metric: the request and provider metrics of all workers of
    this server, then the scrape-time gauges."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    directory = multiprocess_dir()
    if directory:
        workers = CollectorRegistry(auto_describe=False)
        MultiProcessCollector(workers, path=directory)
    else:
        workers = _get().registry
    shared = CollectorRegistry(auto_describe=False)
    shared.register(StateCollector(state))
    with _scrape_lock:  # concurrent scrapes would each run the database queries
        return generate_latest(workers) + generate_latest(shared)
