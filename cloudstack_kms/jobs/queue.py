"""Submitting jobs and showing them (``queryAsyncJobResult``, ``listAsyncJobs``)."""
from __future__ import annotations

import json
import threading
import time
from typing import Any

from sqlalchemy import bindparam, case, insert, null, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from ..api.command import AsyncCommand, AsyncCreateCommand, FlatResult
from ..api.context import CallContext
from ..api.render import result_body
from ..cache import MISSING, TtlCache
from ..db import is_write_conflict
from ..models import Account, AsyncJob, User, new_uuid
from ..models.base import utcnow
from ..models.jobs import JOB_IN_PROGRESS, JOB_SUCCEEDED
from ..services import events
from ..wire import format_date

#: ``jobinstancetype`` → model, so ``jobinstanceid`` can show the object's uuid.
INSTANCE_MODELS: dict[str, type] = {}
_NOT_READ: Any = object()


def register_instance_type(name: str, model: type) -> None:
    INSTANCE_MODELS[name] = model


def seal_params(ctx: CallContext, cls: type[AsyncCommand], params: dict[str, str], job_uuid: str) -> str:
    """The command's parameters as JSON, for the worker; sensitive values sealed with the master key.

    Only ``command`` and the parameters the command declares are kept: anything else is ignored
    by the command anyway, and may be a secret the caller sent by mistake (a ``pin``, a
    ``password``, ``details[0].pin``), which must not sit in clear in ``async_job``.
    """
    sensitive = cls.sensitive_params()
    declared = set(cls.param_fields())
    stored: dict[str, Any] = {}
    for name, value in params.items():
        base = name.split("[", 1)[0]
        if name != "command" and base not in declared:
            continue
        if base in sensitive or _sensitive_map_entry(cls, name):
            stored[name] = {"sealed": ctx.state.master_key.seal_text(value, f"async_job:{job_uuid}:{name}")}
        else:
            stored[name] = value
    return json.dumps(stored, separators=(",", ":"))


def _sensitive_map_entry(cls: type[AsyncCommand], name: str) -> bool:
    checker = getattr(cls, "is_sensitive_map_entry", None)
    return bool(checker and checker(name))


def unseal_params(state, job: AsyncJob) -> dict[str, str]:
    stored = json.loads(job.job_cmd_info or "{}")
    params = {}
    for name, value in stored.items():
        if isinstance(value, dict) and "sealed" in value:
            value = state.master_key.open_text(value["sealed"], f"async_job:{job.uuid}:{name}")
        params[name] = value
    return params


class ShortJobFailed(Exception):
    """The job phase run in the request failed: the request must be run again with its job queued,
    so that the failure is retried and settled the usual way, as a failed job."""


def submit(ctx: CallContext, cls: type[AsyncCommand], params: dict[str, str], args: dict[str, Any],
           finish_short: bool = False) -> tuple[FlatResult, bool]:
    """Write the job (and, for an async create, its object) in the request's transaction. Returns
    the answer and whether the job was queued for a worker.

    ``finish_short``: a command whose job phase is short (:meth:`AsyncCommand.finishes_in_request`)
    runs it here, in the same transaction, and the job row is inserted already finished. Clients
    still get ``jobid`` and poll; the first poll sees the result, and a finished job costs no
    claim, no second transaction and no more polls. If the job phase fails, :class:`ShortJobFailed`
    is raised: the caller rolls back and submits again without ``finish_short``.
    """
    cmd = cls(ctx, args)
    custom = args.get("customjobid") if ctx.is_root_admin else None
    # The uuid is known before the insert: the sealed parameters are bound to it, so the row is
    # written once, complete.
    job = AsyncJob(uuid=custom or new_uuid(), user_id=ctx.user.id, account_id=ctx.account.id,
                   job_cmd=cls.java_class or cls.api_name, job_status=JOB_IN_PROGRESS, job_process_status=0,
                   job_result_code=0, job_init_msid=ctx.state.msid, instance_type=cls.instance_type)
    job.job_cmd_info = seal_params(ctx, cls, params, job.uuid)
    queued = not (finish_short and cls.finishes_in_request(ctx.session))
    created = None
    if isinstance(cmd, AsyncCreateCommand):
        cmd.job_follows = not queued
        created = cmd.create()
        if created is not None and created.id is None and queued:
            ctx.session.flush()
    if not queued:  # before the job is added: its row is then inserted once, finished
        _finish_now(ctx, cmd, job, created)
    instance = created if created is not None else cmd.instance()
    if instance is not None:
        job.instance_id = instance.id
    _insert_job(ctx.session, job)
    rows = []
    if cls.event_type:
        owner = getattr(cmd, "event_account", None) or ctx.account
        rows.append(events.values(event_type=cls.event_type, description=cmd.event_description(), user=ctx.user,
                                  account=owner, state=events.SCHEDULED, resource_id=getattr(instance, "id", None),
                                  resource_type=cls.instance_type))
    if not queued and (completed := _completed_event(cls, cmd, ctx.user, job.instance_id)):
        rows.append(events.values(**completed))
    events.insert_now(ctx.session, rows)
    if not queued:
        _remember_after_commit(ctx, job)
    data: dict[str, Any] = {"jobid": job.uuid}
    if created is not None:
        data = {"id": created.uuid, "jobid": job.uuid}
    return FlatResult(data), queued


_INSERT_JOB = insert(AsyncJob.__table__)


def _insert_job(session: Session, job: AsyncJob) -> None:
    """One Core INSERT of the job's row, written once and complete, at once (its id is needed for
    the answer kept for the first poll). The object is not added to the session: nothing in this
    transaction changes it again (workers and polls read the row back). ``add`` + ``flush`` cost
    4% more of a short createVolume request (6,240 against 5,990 Python calls, counted)."""
    job.created = job.created or utcnow()
    job.last_updated = job.last_updated or job.created
    values = {column.key: value for column in AsyncJob.__table__.columns
              if (value := getattr(job, column.key)) is not None}
    job.id = session.connection().execute(_INSERT_JOB, values).inserted_primary_key[0]


def record_job_completed(session: Session, cls: type[AsyncCommand], cmd: AsyncCommand, user: User,
                         instance_id: int | None) -> None:
    """The event of a job that succeeded, wherever it ran (a worker, or its request: :func:`submit`)."""
    completed = _completed_event(cls, cmd, user, instance_id)
    if completed:
        events.record(session, **completed)


def _completed_event(cls: type[AsyncCommand], cmd: AsyncCommand, user: User,
                     instance_id: int | None) -> dict[str, Any] | None:
    if not cls.event_type:
        return None
    return {"event_type": cls.event_type, "description": "Successfully completed " + cmd.event_description(),
            "user": user, "account": getattr(cmd, "event_account", None) or cmd.ctx.account,
            "resource_id": instance_id, "resource_type": cls.instance_type}


def _finish_now(ctx: CallContext, cmd: AsyncCommand, job: AsyncJob, created: Any) -> None:
    """Run the job phase of ``cmd`` in the request's transaction and settle ``job`` as a worker would
    have: its result, completion time, and this server as the one that completed it."""
    if isinstance(cmd, AsyncCreateCommand):
        cmd.created = created
    try:
        result = cmd.execute()
    except Exception as exc:
        if is_write_conflict(exc):
            raise  # the whole request is run again by the endpoint, as for any conflict
        raise ShortJobFailed() from exc
    now = utcnow()
    job.job_status, job.job_result_code = JOB_SUCCEEDED, 0
    job.job_result = json.dumps(result_body(result, ctx.role), separators=(",", ":"), ensure_ascii=False)
    job.job_complete_msid, job.last_updated, job.removed = ctx.state.msid, now, now


_instance_uuid: tuple[int, Any] | None = None  # (len(INSTANCE_MODELS) when built, the expression)


def instance_uuid_column() -> Any:
    """``instance_uuid``: the uuid of a job's instance, as a column of a query on ``async_job`` (one
    correlated lookup by primary key, of the table its ``instance_type`` names)."""
    global _instance_uuid
    built = _instance_uuid
    if built is None or built[0] != len(INSTANCE_MODELS):
        whens = [(AsyncJob.instance_type == name,
                  select(model.uuid).where(model.id == AsyncJob.instance_id).correlate(AsyncJob).scalar_subquery())
                 for name, model in INSTANCE_MODELS.items() if hasattr(model, "uuid")]
        expr = case(*whens, else_=null()) if whens else null()
        built = _instance_uuid = (len(INSTANCE_MODELS), expr.label("instance_uuid"))
    return built[1]


_poll: tuple[int, Any] | None = None


def poll_query() -> Any:
    """The job's row (plain columns: no ORM object to build) and its instance's uuid, in one query;
    the job's uuid is the parameter ``job_uuid``. Built once (and again if an instance type is
    registered): SQLAlchemy then computes its cache key once, not on every poll."""
    global _poll
    built = _poll
    if built is None or built[0] != len(INSTANCE_MODELS):
        stmt = select(*AsyncJob.__table__.columns, instance_uuid_column()).where(
            AsyncJob.uuid == bindparam("job_uuid"))
        built = _poll = (len(INSTANCE_MODELS), stmt)
    return built[1]


def job_view(session: Session, job: Any, caller: tuple[User, Account] | None = None) -> dict[str, Any]:
    """The flat AsyncJobResponse fields. ``job`` is an :class:`AsyncJob`, or a row of :func:`poll_query`
    (which brings the instance's uuid with it).

    ``caller``: the calling user and account, as the request already holds them. Most jobs are
    polled by whoever started them: their rows are then not read again."""
    user = _held_or_get(session, User, job.user_id, caller[0] if caller else None)
    account = _held_or_get(session, Account, job.account_id, caller[1] if caller else None)
    domain = account.domain if account else None  # (loaded with the account: a joined relationship)
    view: dict[str, Any] = {
        "jobid": job.uuid,
        "accountid": account.uuid if account else None,
        "account": account.account_name if account else None,
        "domainid": domain.uuid if domain else None,
        "domainpath": domain.display_path if domain else None,
        "userid": user.uuid if user else None,
        "cmd": job.job_cmd,
        "jobstatus": job.job_status or 0,
        "jobprocstatus": job.job_process_status or 0,
        "jobresultcode": job.job_result_code or 0,
        "created": format_date(job.created) if job.created else None,
        "completed": format_date(job.removed) if job.removed else None,
        "managementserverid": job.job_executing_msid or job.job_init_msid,
    }
    if job.job_result is not None:
        view["jobresulttype"] = "object"
        view["jobresult"] = json.loads(job.job_result)
    if job.instance_type:
        view["jobinstancetype"] = job.instance_type
        model = INSTANCE_MODELS.get(job.instance_type)
        if model is not None and job.instance_id is not None:
            found = getattr(job, "instance_uuid", _NOT_READ)
            view["jobinstanceid"] = found if found is not _NOT_READ else instance_uuid_of(session, model,
                                                                                          job.instance_id)
    return view


def _held_or_get(session: Session, model: type, row_id: int | None, held: Any) -> Any:
    if held is not None and row_id is not None and held.id == row_id:
        return held
    return session.get(model, row_id) if row_id is not None else None


def instance_uuid_of(session: Session, model: type, instance_id: int) -> str | None:
    """The uuid of a job's instance: the row this session already holds, else that one column."""
    row = session.identity_map.get(identity_key(model, instance_id))
    if row is not None:
        return getattr(row, "uuid", None)
    return session.scalar(select(model.uuid).where(model.id == instance_id)) if hasattr(model, "uuid") else None


# ------------------------------------------------------------------ jobs finished in their request
class FinishedJobs:
    """The answers of jobs this process finished in their request, for their first poll.

    Such a job's client polls it next, nearly always on the same keep-alive connection and so
    in the same process: that poll is then answered without a query. A finished job never
    changes again; what the answer shows of its account and user (names) may be up to
    :attr:`ttl_sec` old. Only the job's own account is answered from here: anyone else goes
    through the database and the access rule."""

    ttl_sec = 5.0

    def __init__(self) -> None:
        self._answers: TtlCache[tuple[int, int, dict[str, Any]]] = TtlCache(self.ttl_sec, max_entries=4096)

    def remember(self, job_uuid: str, job_id: int, account_id: int, view: dict[str, Any]) -> None:
        self._answers.get_or_load(job_uuid, lambda: (job_id, account_id, view))

    def answer(self, job_uuid: str, account_id: int) -> tuple[int, dict[str, Any]] | None:
        """(job id, view) if this process finished the job for ``account_id``."""
        found = self._answers.get(job_uuid)
        if found is MISSING or found[1] != account_id:
            return None
        return found[0], found[2]


def finished_jobs(state) -> FinishedJobs:  # noqa: ANN001 - AppState
    found = state.services.get("finished_jobs")
    if found is None:
        found = state.services.setdefault("finished_jobs", FinishedJobs())
    return found


def _remember_after_commit(ctx: CallContext, job: AsyncJob) -> None:
    """The view is made now (its rows are at hand in this session); it is kept once committed."""
    view = job_view(ctx.session, job, (ctx.user, ctx.account))
    store = finished_jobs(ctx.state)
    ctx.on_commit.append(lambda: store.remember(job.uuid, job.id, job.account_id, view))


# ------------------------------------------------------------------ last_polled
class PollRecorder:
    """``last_polled``, written behind: at most one UPDATE per :attr:`every_sec` per process.

    Clients poll every few hundred milliseconds; writing (and committing) the job's row on each
    poll would make the most frequent call of all a write, and make it wait for the row lock of
    a job being completed. Nothing but operators reads the column. A poll after a quiet second
    writes at once (its own job and those polled meanwhile); the heartbeat writes what is left.
    """

    every_sec = 1.0
    max_pending = 10_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: set[int] = set()
        self._due = 0.0

    def polled(self, session: Session, job_id: int) -> None:
        now = time.monotonic()
        with self._lock:
            self._pending.add(job_id)
            if now < self._due and len(self._pending) < self.max_pending:
                return
            ids, self._pending, self._due = self._pending, set(), now + self.every_sec
        _write_polled(session, ids)

    def flush(self, db) -> None:  # noqa: ANN001 - Database
        with self._lock:
            ids, self._pending = self._pending, set()
        if ids:
            with db.transaction() as session:
                _write_polled(session, ids)


def _write_polled(session: Session, ids: set[int]) -> None:
    session.execute(update(AsyncJob).where(AsyncJob.id.in_(sorted(ids))).values(last_polled=utcnow())
                    .execution_options(synchronize_session=False))


def poll_recorder(state) -> PollRecorder:  # noqa: ANN001 - AppState
    recorder = state.services.get("job_polls")
    if recorder is None:
        recorder = state.services.setdefault("job_polls", PollRecorder())
    return recorder
