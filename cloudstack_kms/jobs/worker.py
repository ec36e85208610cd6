"""Job worker threads, the server heartbeat, and recovery of jobs left by dead servers.

An idle thread takes the oldest queued job (``job_status = 0``, no executing server):

* If its command *shares transactions* (``shares_transaction(session)``, e.g. a metadata-only
  ``createVolume``: a few rows and one provider call), the queued jobs of that command are
  claimed, run and completed in **one** transaction: read ``FOR UPDATE SKIP LOCKED`` (MySQL 8,
  MariaDB 10.6+; on SQLite the transaction holds the only write lock), so no other server can
  take them, and committed once. If anything in it fails, it is rolled back (the jobs are queued
  again, nothing of them kept) and each job is claimed and run on its own, so one failing job
  never takes the others with it. If the server dies meanwhile, the database rolls it back.
* Otherwise the job is claimed with a conditional update (``... WHERE job_status = 0 AND
  job_executing_msid IS NULL``), committed, and then run in a transaction of its own. The row
  lock lets exactly one server win each job, without long-held locks that could deadlock.

Either way a result is written only by a conditional update that requires the job to be still
in progress and still held as claimed, so a job settled meanwhile (by a server that declared
this one dead) is never settled twice.

Every server writes a heartbeat to ``mshost``. A server whose heartbeat is older than the
timeout, or whose process is gone from this host, is declared down; its running jobs are
failed with upstream's text, or queued again when their command is resumable.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from datetime import timedelta

from sqlalchemy import bindparam, select, update

from ..api.command import AsyncCreateCommand, Command
from ..api.context import CallContext
from ..errors import GENERIC_INTERNAL_TEXT, INTERNAL_ERROR, ApiError, CloudRuntimeError
from ..api.parse import parse_args
from ..api.render import result_body
from ..app_state import AppState
from ..db import CONFLICT_ATTEMPTS, conflict_pause, is_write_conflict
from ..models import AsyncJob, ManagementServer, User
from ..models.base import utcnow
from ..models.jobs import JOB_FAILED, JOB_IN_PROGRESS, JOB_SUCCEEDED
from ..services import events
from . import queue

log = logging.getLogger(__name__)
RESTART_TEXT = "job cancelled because of management server restart or shutdown"


def _pid_alive(pid: int | None) -> bool:
    """Whether a process of this host still runs. A zombie is dead: a server killed with -9
    stays one until its new parent reaps it, which can take a while."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return True  # no /proc (not Linux): trust kill(0)
    state = stat[stat.rfind(b")") + 2:][:1]
    return state not in (b"Z", b"X", b"x")


class JobWorker:
    #: Most jobs claimed (and run in one transaction) at once, for commands that allow it.
    batch_size = 16
    #: An idle thread looks at the queue this often even when nobody woke it (jobs submitted to
    #: another server, or to another process of this one, are seen this way).
    idle_poll_sec = 1.0

    def __init__(self, state: AppState, threads: int = 4) -> None:
        self.state = state
        self.thread_count = threads
        self._wake = threading.Condition()
        self._pending_wakeups = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.background_tasks: list = []  # callables run by the heartbeat thread
        self._skip_locked: bool | None = None  # FOR UPDATE SKIP LOCKED available (None: not known yet)
        self._by_job_cmd: dict[str, type[Command]] | None = None
        self._statements: dict = {}

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self.register()
        self.recover()
        for i in range(self.thread_count):
            t = threading.Thread(target=self._loop, name=f"job-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        t = threading.Thread(target=self._heartbeat_loop, name="mshost-heartbeat", daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self, grace: float = 2.0) -> None:
        """Stop claiming, give running jobs ``grace`` seconds, then mark this server Down.

        A job still running after that is settled like any job of a Down server ("job
        cancelled because of management server restart or shutdown"); if it finishes after
        all, its result is discarded (see :meth:`run`).
        """
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        deadline = time.monotonic() + grace
        for t in self._threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
        try:
            with self.state.db.transaction() as s:
                s.execute(update(ManagementServer).where(ManagementServer.msid == self.state.msid)
                          .values(state="Down", removed=utcnow()))
        except Exception:  # noqa: BLE001 - shutting down; the heartbeat timeout covers this
            log.warning("could not mark this server down")

    def wake(self) -> None:
        with self._wake:
            self._pending_wakeups += 1
            self._wake.notify()

    def register(self) -> None:
        with self.state.db.transaction() as s:
            s.add(ManagementServer(msid=self.state.msid, name=self.state.hostname, pid=self.state.pid,
                                   service_ip="127.0.0.1", state="Up", last_update=utcnow()))

    # ------------------------------------------------------------ recovery
    def recover(self) -> int:
        """Declare dead servers down and settle their running jobs. Returns jobs settled."""
        timeout = timedelta(seconds=self.state.settings.mshost_timeout_sec)
        settled = 0
        with self.state.db.transaction() as s:
            now = utcnow()
            dead = []
            for ms in s.scalars(select(ManagementServer).where(ManagementServer.state == "Up",
                                                               ManagementServer.msid != self.state.msid)):
                same_host_gone = ms.name == self.state.hostname and not _pid_alive(ms.pid)
                if same_host_gone or ms.last_update < now - timeout:
                    ms.state = "Down"
                    ms.removed = now
                    dead.append(ms.msid)
            down = set(dead) | set(s.scalars(select(ManagementServer.msid).where(ManagementServer.state == "Down")))
            if not down:
                return 0
            # Unclaimed jobs (executing msid NULL) stay queued: any live server will claim them.
            jobs = list(s.scalars(select(AsyncJob).where(AsyncJob.job_status == JOB_IN_PROGRESS,
                                                         AsyncJob.job_executing_msid.in_(down))))
            for job in jobs:
                cls = self._command_of(job)
                owner = job.job_executing_msid
                # Each change is conditional on the job still being the dead server's, so two
                # servers recovering at once (or a late finish) never settle a job twice.
                if cls is not None and getattr(cls, "resumable", False):
                    requeued = s.execute(_owned_by(job.id, owner).values(job_executing_msid=None, last_updated=now)
                                         .execution_options(synchronize_session=False)).rowcount
                    if requeued:
                        log.info("re-queueing resumable job %s of a dead server", job.uuid)
                        settled += 1
                    continue
                if _complete(s, job.id, owner, JOB_FAILED, CloudRuntimeError(RESTART_TEXT).as_job_result(),
                             code=INTERNAL_ERROR, complete_msid=owner):
                    log.warning("failed job %s left by dead server %s", job.uuid, owner)
                    settled += 1
        if settled:
            self.wake()
        return settled

    def _command_of(self, job: AsyncJob):
        try:
            name = json.loads(job.job_cmd_info or "{}").get("command")
        except ValueError:
            return None
        return self.state.registry.get(name) if isinstance(name, str) else None

    # ------------------------------------------------------------ loops
    def _heartbeat_loop(self) -> None:
        interval = self.state.settings.heartbeat_interval_sec
        while not self._stop.wait(interval):
            try:
                with self.state.db.transaction() as s:
                    s.execute(update(ManagementServer).where(ManagementServer.msid == self.state.msid)
                              .values(last_update=utcnow(), state="Up", removed=None))
                self.recover()
                queue.poll_recorder(self.state).flush(self.state.db)
                for task in list(self.background_tasks):
                    task()
            except Exception:  # noqa: BLE001 - keep beating; the next round retries
                log.exception("heartbeat round failed")

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                handled = self.run_next()
            except Exception as exc:  # noqa: BLE001
                if is_write_conflict(exc):  # another server claimed the same jobs first
                    log.debug("claiming a job lost a write conflict")
                    handled = 1  # look again at once
                else:
                    log.exception("claiming a job failed")
                    handled = 0
            if not handled:
                with self._wake:
                    if self._pending_wakeups == 0:
                        self._wake.wait(timeout=self.idle_poll_sec)
                    self._pending_wakeups = max(0, self._pending_wakeups - 1)

    def _queued(self, *entities):  # noqa: ANN001, ANN202
        """Queued jobs, oldest first. ``removed`` is NULL until a job ends: its index keeps the
        finished jobs out of the scan."""
        return select(*entities).where(AsyncJob.removed.is_(None), AsyncJob.job_status == JOB_IN_PROGRESS,
                                       AsyncJob.job_executing_msid.is_(None)).order_by(AsyncJob.id)

    def _locking(self, session, stmt):  # noqa: ANN001, ANN202
        """``stmt`` with ``FOR UPDATE SKIP LOCKED`` where the database has it (not on SQLite, whose
        claims run under its only write lock)."""
        if self.state.db.is_sqlite:
            return stmt
        if self._skip_locked is None:
            self._skip_locked = _supports_skip_locked(session)
        return stmt.with_for_update(skip_locked=True) if self._skip_locked else stmt

    def _queue_head(self, session, limit: int):  # noqa: ANN001, ANN202
        """The statement reading the queue's first ``limit`` jobs (locked), built once per limit:
        SQLAlchemy then computes its cache key once, not on every claim."""
        stmt = self._statements.get(limit)
        if stmt is None:
            stmt = self._statements[limit] = self._locking(session, self._queued(AsyncJob).limit(limit))
        return stmt

    def _queue_empty(self) -> bool:
        """SQLite: a deferred (read-only) look first, so that an idle thread finding nothing does not
        queue for SQLite's only write lock behind a running job."""
        if not self.state.db.is_sqlite:
            return False
        stmt = self._statements.get("any")
        if stmt is None:
            stmt = self._statements["any"] = self._queued(AsyncJob.id).limit(1)
        with self.state.db.transaction(readonly=True) as s:
            return s.scalar(stmt) is None

    def _after_claim(self, taken: int, more: bool) -> None:
        """The wake-ups of the jobs taken together are used up; jobs left in the queue (of another
        command, or more than fit in a batch) get another thread."""
        with self._wake:
            self._pending_wakeups = max(0, self._pending_wakeups - max(0, taken - 1))
            if more:
                self._pending_wakeups += 1
                self._wake.notify()

    # ------------------------------------------------------------ claiming and running
    def run_next(self) -> int:
        """Claim and run the oldest queued job, with the queued jobs of the same command when that
        command shares transactions. Returns how many jobs were handled (0: none was queued).

        Jobs that share a transaction are claimed *in* it: their rows are read with ``FOR UPDATE
        SKIP LOCKED`` (on SQLite under the only write lock), run, and completed, and all of it
        commits at once, so the claim costs no transaction of its own and no other server can take
        them meanwhile. If the server dies first, the database rolls the transaction back and the
        jobs are simply queued again. Other jobs are claimed (committed as this server's) and then
        run with :meth:`run`.
        """
        if not self.state.db.is_sqlite and self._skip_locked is None:
            with self.state.db.transaction() as s:
                self._skip_locked = _supports_skip_locked(s)
        if not self.state.db.is_sqlite and not self._skip_locked:
            # Without SKIP LOCKED, servers reading the queue FOR UPDATE would wait for each other's
            # whole batches: claim first (committed), then run.
            job_ids = self.claim_batch()
            if job_ids:
                self.run_batch(job_ids)
            return len(job_ids)
        if self._queue_empty():
            return 0
        single: int | None = None
        together: list[int] = []
        more = False
        try:
            with self.state.db.transaction() as s:
                jobs = list(s.scalars(self._queue_head(s, self.batch_size)))
                if not jobs:
                    return 0
                first = jobs[0]
                more = len(jobs) == self.batch_size
                if self._shares_transaction(s, first.job_cmd):
                    batch = [job for job in jobs if job.job_cmd == first.job_cmd]
                    together = [job.id for job in batch]
                    more = more or len(batch) < len(jobs)
                    self._run_together(s, batch, owner=None)
                else:
                    single, more = first.id, more or len(jobs) > 1
                    if not self._claim(s, [single]):
                        single = None
        except Exception as exc:  # noqa: BLE001
            if not together:
                raise
            # Rolled back: the jobs are queued again. Each is claimed and run on its own, so that
            # a failing one is settled (failed) without taking the others with it.
            self._after_claim(len(together), more)
            self._run_alone(together, exc)
            return len(together)
        self._after_claim(len(together) or 1, more)
        if single is not None:
            self.run(single)
        return len(together) or 1

    def claim_next(self) -> int | None:
        """Claim the oldest queued job, alone (it is this server's then; run it with :meth:`run`)."""
        claimed = self.claim_batch(limit=1)
        return claimed[0] if claimed else None

    def claim_batch(self, limit: int | None = None) -> list[int]:
        """Claim the oldest queued job and, when its command shares transactions, the other queued
        jobs of that command (up to ``limit``, default :attr:`batch_size`). Returns their ids, oldest
        first: they are this server's now, and must be run (:meth:`run_batch`)."""
        limit = limit or self.batch_size
        if self._queue_empty():
            return []
        with self.state.db.transaction() as s:
            rows = s.execute(self._locking(s, self._queued(AsyncJob.id, AsyncJob.job_cmd).limit(limit))).all()
            if not rows:
                return []
            chosen = [rows[0].id]
            if limit > 1 and len(rows) > 1 and self._shares_transaction(s, rows[0].job_cmd):
                chosen += [r.id for r in rows[1:] if r.job_cmd == rows[0].job_cmd]
            chosen = self._claim(s, chosen)
        self._after_claim(len(chosen), len(rows) > len(chosen) or len(rows) == limit)
        return chosen

    def _claim(self, s, job_ids: list[int]) -> list[int]:  # noqa: ANN001
        """Make queued jobs this server's in transaction ``s``; the ids it got."""
        won = s.execute(update(AsyncJob).where(
            AsyncJob.id.in_(job_ids), AsyncJob.job_status == JOB_IN_PROGRESS, AsyncJob.job_executing_msid.is_(None))
            .values(job_executing_msid=self.state.msid, last_updated=utcnow())
            .execution_options(synchronize_session=False)).rowcount
        if won == len(job_ids):
            return job_ids
        if not won:
            return []
        # Another server took some meanwhile (no SKIP LOCKED on this database).
        return list(s.scalars(select(AsyncJob.id).where(
            AsyncJob.id.in_(job_ids), AsyncJob.job_status == JOB_IN_PROGRESS,
            AsyncJob.job_executing_msid == self.state.msid).order_by(AsyncJob.id)))

    def _shares_transaction(self, session, job_cmd: str | None) -> bool:  # noqa: ANN001
        """Whether jobs of this command may run several in one transaction: the command says so
        with ``shares_transaction(session)``. Such a job must keep all its effects in the
        transaction (or undo them when it rolls back): it may be rolled back and run again."""
        if self._by_job_cmd is None:
            self._by_job_cmd = {cls.java_class or cls.api_name: cls for cls in self.state.registry}
        cls = self._by_job_cmd.get(job_cmd or "")
        check = getattr(cls, "shares_transaction", None)
        return bool(check is not None and check(session))

    def run_batch(self, job_ids: list[int]) -> None:
        """Run jobs this server has claimed (:meth:`claim_batch`). Several run in one transaction and
        commit together; if any of them fails, is lost, or the commit fails, that transaction is
        rolled back, nothing of it is kept, and each job runs again alone with :meth:`run`, which
        settles it whatever happens."""
        if len(job_ids) == 1:
            self.run(job_ids[0])
            return
        try:
            with self.state.db.transaction() as s:
                jobs = list(s.scalars(select(AsyncJob).where(AsyncJob.id.in_(job_ids)).order_by(AsyncJob.id)))
                if len(jobs) != len(job_ids):
                    raise _NotABatch()
                self._run_together(s, jobs, owner=self.state.msid)
        except Exception as exc:  # noqa: BLE001 - every job is settled below, one by one
            self._run_alone(job_ids, exc, claimed=True)

    def _run_together(self, s, jobs: list[AsyncJob], owner: int | None) -> None:  # noqa: ANN001
        """Run jobs of one command in transaction ``s``; any failure propagates (and rolls it back)."""
        # Loaded once for all the jobs, and held here: the session keeps rows weakly.
        users = list(s.scalars(_USERS, {"ids": sorted({job.user_id for job in jobs})}))
        decoded = [(job, *self._decode(job)) for job in jobs]
        cls = decoded[0][2]
        if any(c is not cls for _j, _p, c in decoded) or getattr(cls, "commits_in_batches", False):
            raise _NotABatch()
        prepare = getattr(cls, "prepare_jobs", None)
        if prepare is not None:
            prepare(s, jobs)
        for job, params, _cls in decoded:
            self._execute(s, job, cls, params, owner=owner)
        del users

    def _run_alone(self, job_ids: list[int], cause: Exception, claimed: bool = False) -> None:
        """After a shared transaction failed: each job on its own (claimed first unless ``claimed``)."""
        if not isinstance(cause, (_NotABatch, ApiError, _JobLost)):
            log.info("%d jobs run together failed (%s); running them one by one", len(job_ids),
                     type(cause).__name__)
        for job_id in job_ids:
            if not claimed:
                with self.state.db.transaction() as s:
                    if not self._claim(s, [job_id]):
                        continue  # another server has it now
            self.run(job_id)

    def run(self, job_id: int) -> None:
        """Run a job this server has claimed, in one transaction with its result.

        The result is written only if the job is still this server's (another server may
        have declared this one dead and failed the job meanwhile): otherwise the whole
        transaction, the command's own changes included, is rolled back.
        """
        for attempt in range(1, CONFLICT_ATTEMPTS + 1):
            try:
                self._run_once(job_id)
                return
            except _WriteConflict as conflict:
                if attempt == CONFLICT_ATTEMPTS:
                    log.error("job %s failed", job_id, exc_info=conflict.cause)
                    self.fail(job_id, CloudRuntimeError(GENERIC_INTERNAL_TEXT), conflict.cls)
                    return
                # Another server's transaction won (Galera certification, a deadlock): this one was
                # rolled back whole, its image or KEK undone with it, so running it again is safe.
                log.debug("job %s lost a write conflict (attempt %d of %d)", job_id, attempt, CONFLICT_ATTEMPTS)
                conflict_pause(attempt, "job")

    def _run_once(self, job_id: int) -> None:
        state = self.state
        cls = None
        try:
            with state.db.transaction() as s:
                job = s.get(AsyncJob, job_id)
                params, cls = self._decode(job)
                if not getattr(cls, "commits_in_batches", False):
                    prepare = getattr(cls, "prepare_jobs", None)
                    if prepare is not None:
                        prepare(s, [job])
                    self._execute(s, job, cls, params, owner=state.msid)
                    return
            # Long commands (migration) commit batch by batch *before* the final transaction, so
            # no outer transaction holds SQLite's write lock while they commit, and a crash loses
            # one batch at most.
            with state.db.transaction() as s:
                batched = self._command(s, cls, params, job_id)
            batched.ctx.session = None
            batched.ctx.progress = lambda value: self.set_progress(job_id, value)
            batched.run_batches()
            with state.db.transaction() as s:
                self._execute(s, s.get(AsyncJob, job_id), cls, params, owner=state.msid, batched=batched)
        except _JobLost:
            log.warning("job %s was settled by another server while it ran here; its result is discarded", job_id)
        except ApiError as err:
            self.fail(job_id, err, cls)
        except Exception as exc:  # noqa: BLE001 - a bug must still end the job cleanly
            if is_write_conflict(exc):
                raise _WriteConflict(exc, cls) from None
            log.exception("job %s failed", job_id)
            self.fail(job_id, CloudRuntimeError(GENERIC_INTERNAL_TEXT), cls)

    def _decode(self, job: AsyncJob) -> tuple[dict, type[Command]]:
        """The job's parameters (unsealed) and its command class."""
        params = queue.unseal_params(self.state, job)
        cls = self.state.registry.get(params.get("command", ""))
        if cls is None:
            raise CloudRuntimeError(f"Unknown API command: {params.get('command')}")
        return params, cls

    def _execute(self, s, job: AsyncJob, cls, params: dict, *, owner: int | None, batched=None) -> None:  # noqa: ANN001
        """Execute a job's command in transaction ``s`` and write its result and event there.

        ``owner``: the msid the job must still be held by (None: not claimed, but locked by ``s``).
        Raises :class:`_JobLost` if it is not.
        """
        state = self.state
        user = s.get(User, job.user_id)
        cmd = self._command(s, cls, params, job.id, progress_in_transaction=owner is None)
        ctx = cmd.ctx
        if batched is not None:  # keep what the batches learned; rebind to this transaction
            batched.ctx, batched.args = cmd.ctx, cmd.args
            cmd = batched
        result = cmd.execute()
        body = result_body(result, ctx.role)
        if not _complete(s, job.id, owner, JOB_SUCCEEDED, body, code=0, complete_msid=state.msid):
            raise _JobLost()
        queue.record_job_completed(s, cls, cmd, user, job.instance_id)

    def _command(self, s, cls, params: dict, job_id: int, progress_in_transaction: bool = False):  # noqa: ANN001, ANN202
        """Rebuild the command of a job from its stored parameters, inside transaction ``s``.

        A command may declare ``job_args(params)``: the arguments its job phase needs, made from the
        stored parameters without validating and resolving them again (the request did that).
        """
        job = s.get(AsyncJob, job_id)
        user = s.get(User, job.user_id)
        ctx = CallContext(session=s, user=user, account=user.account, state=self.state, job_id=job_id,
                          progress=self._progress_writer(job_id, s, progress_in_transaction))
        job_args = getattr(cls, "job_args", None)
        cmd = cls(ctx, job_args(params) if job_args is not None else parse_args(cls, params, s))
        if isinstance(cmd, AsyncCreateCommand):
            model = queue.INSTANCE_MODELS.get(cls.instance_type or "")
            cmd.created = s.get(model, job.instance_id) if model and job.instance_id else None
        return cmd

    def _progress_writer(self, job_id: int, job_session, in_transaction: bool = False):  # noqa: ANN001, ANN202
        if self.state.db.is_sqlite or in_transaction:
            # The job's transaction holds SQLite's only write lock (or, for jobs claimed in their
            # own transaction, the job's row lock): a second transaction would wait for it (and
            # time out). Write in the job's own transaction instead.
            def write(value: int) -> None:
                job_session.execute(update(AsyncJob).where(AsyncJob.id == job_id)
                                    .values(job_process_status=value, last_updated=utcnow())
                                    .execution_options(synchronize_session=False))
            return write
        return lambda value: self.set_progress(job_id, value)

    def set_progress(self, job_id: int, value: int) -> None:
        """Progress in its own transaction, so pollers see it while the job runs (not on SQLite)."""
        with self.state.db.transaction() as s:
            s.execute(update(AsyncJob).where(AsyncJob.id == job_id)
                      .values(job_process_status=value, last_updated=utcnow()))

    def fail(self, job_id: int, err: ApiError, cls=None) -> None:
        with self.state.db.transaction() as s:
            job = s.get(AsyncJob, job_id)
            user = s.get(User, job.user_id)
            if err.code in (530, 533, 534) and user.account.role_type != "Admin":
                err = ApiError(GENERIC_INTERNAL_TEXT, code=err.code)
            if not _complete(s, job_id, self.state.msid, JOB_FAILED, err.as_job_result(), code=err.code,
                             complete_msid=self.state.msid):
                log.warning("job %s was settled by another server while it ran here", job_id)
                return
            if cls is not None and cls.event_type:
                events.record(s, event_type=cls.event_type, description=f"Error while {cls.api_name}",
                              user=user, account=user.account, level=events.ERROR,
                              resource_id=job.instance_id, resource_type=cls.instance_type)


class _WriteConflict(Exception):
    def __init__(self, cause: BaseException, cls) -> None:  # noqa: ANN001
        super().__init__("write conflict")
        self.cause, self.cls = cause, cls


class _JobLost(Exception):
    """The job stopped being this server's while it ran."""


class _NotABatch(Exception):
    """The claimed jobs cannot share a transaction after all (run them one by one)."""


def _supports_skip_locked(session) -> bool:  # noqa: ANN001
    """``FOR UPDATE SKIP LOCKED``: MySQL 8.0.1+, MariaDB 10.6+."""
    session.connection()  # the dialect learns the server's version on the first connection
    dialect = session.get_bind().dialect
    version = tuple(getattr(dialect, "server_version_info", None) or ())
    if getattr(dialect, "is_mariadb", False):
        return version >= (10, 6)
    return version >= (8, 0, 1)


def _owned_by(job_id: int, owner: int | None):  # noqa: ANN202
    """An UPDATE of a job still in progress and still held by ``owner``."""
    stmt = update(AsyncJob).where(AsyncJob.id == job_id, AsyncJob.job_status == JOB_IN_PROGRESS)
    if owner is None:
        return stmt.where(AsyncJob.job_executing_msid.is_(None))
    return stmt.where(AsyncJob.job_executing_msid == owner)


def _complete_statement(owner_known: bool):  # noqa: ANN202
    """The UPDATE that settles a job still in progress and held by ``:owner`` (or by nobody), on the
    table (no ORM bulk-update work per call), built once: its cache key is then computed once too."""
    job = AsyncJob.__table__
    held = job.c.job_executing_msid == bindparam("owner") if owner_known else job.c.job_executing_msid.is_(None)
    return update(job).where(job.c.id == bindparam("job_id"), job.c.job_status == JOB_IN_PROGRESS, held).values(
        job_status=bindparam("status"), job_result_code=bindparam("code"), job_result=bindparam("result"),
        job_complete_msid=bindparam("complete_msid"), job_executing_msid=None, last_updated=bindparam("now"),
        removed=bindparam("completed"))


_COMPLETE = {True: _complete_statement(True), False: _complete_statement(False)}
_USERS = select(User).where(User.id.in_(bindparam("ids", expanding=True)))


def _complete(session, job_id: int, owner: int | None, status: int, result: dict, *, code: int,
              complete_msid: int | None) -> bool:
    """Settle a job iff it is still in progress and held by ``owner`` (None: by no server); True if
    this call did."""
    now = utcnow()
    params = {"job_id": job_id, "status": status, "code": code,
              "result": json.dumps(result, separators=(",", ":"), ensure_ascii=False),
              "complete_msid": complete_msid, "now": now, "completed": now}
    if owner is not None:
        params["owner"] = owner
    return session.execute(_COMPLETE[owner is not None], params).rowcount == 1


def wait_for(state: AppState, job_uuid: str, timeout: float = 30.0) -> AsyncJob:
    """Block until a job ends (for the CLI and tests that run in-process)."""
    deadline = time.monotonic() + timeout
    while True:
        with state.db.transaction() as s:
            job = s.scalars(select(AsyncJob).where(AsyncJob.uuid == job_uuid)).one()
            if job.job_status != JOB_IN_PROGRESS or time.monotonic() > deadline:
                return job
        time.sleep(0.05)
