"""Job worker threads, the server heartbeat, and recovery of jobs left by dead servers.

Claiming is a conditional update (``... WHERE job_status = 0 AND job_executing_msid IS
NULL``): the database row lock lets exactly one server win each job, on MySQL and SQLite
alike, without long-held locks that could deadlock.

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

from sqlalchemy import select, update

from ..api.command import AsyncCreateCommand
from ..api.context import CallContext
from ..errors import GENERIC_INTERNAL_TEXT, INTERNAL_ERROR, ApiError, CloudRuntimeError
from ..api.parse import parse_args
from ..api.render import result_body
from ..app_state import AppState
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
    def __init__(self, state: AppState, threads: int = 4) -> None:
        self.state = state
        self.thread_count = threads
        self._wake = threading.Condition()
        self._pending_wakeups = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.background_tasks: list = []  # callables run by the heartbeat thread

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
                for task in list(self.background_tasks):
                    task()
            except Exception:  # noqa: BLE001 - keep beating; the next round retries
                log.exception("heartbeat round failed")

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                job_id = self.claim_next()
            except Exception:  # noqa: BLE001
                log.exception("claiming a job failed")
                job_id = None
            if job_id is None:
                with self._wake:
                    if self._pending_wakeups == 0:
                        self._wake.wait(timeout=1.0)
                    self._pending_wakeups = max(0, self._pending_wakeups - 1)
                continue
            self.run(job_id)

    def claim_next(self) -> int | None:
        with self.state.db.transaction() as s:
            candidates = list(s.scalars(select(AsyncJob.id).where(
                AsyncJob.job_status == JOB_IN_PROGRESS, AsyncJob.job_executing_msid.is_(None))
                .order_by(AsyncJob.id).limit(8)))
        for job_id in candidates:
            with self.state.db.transaction() as s:
                won = s.execute(update(AsyncJob).where(
                    AsyncJob.id == job_id, AsyncJob.job_status == JOB_IN_PROGRESS,
                    AsyncJob.job_executing_msid.is_(None)).values(
                    job_executing_msid=self.state.msid, last_updated=utcnow())).rowcount
            if won == 1:
                return job_id
        return None

    # ------------------------------------------------------------ running
    def run(self, job_id: int) -> None:
        """Run a job this server has claimed, in one transaction with its result.

        The result is written only if the job is still this server's (another server may
        have declared this one dead and failed the job meanwhile): otherwise the whole
        transaction, the command's own changes included, is rolled back.
        """
        state = self.state
        with state.db.transaction() as s:
            job = s.get(AsyncJob, job_id)
            params = queue.unseal_params(state, job)
            cls = state.registry.get(params.get("command", ""))
        try:
            if cls is None:
                raise CloudRuntimeError(f"Unknown API command: {params.get('command')}")
            batched = None
            if getattr(cls, "commits_in_batches", False):
                # Long commands (migration) commit batch by batch *before* the final transaction, so
                # no outer transaction holds SQLite's write lock while they commit, and a crash loses
                # one batch at most.
                with state.db.transaction() as s:
                    batched = self._command(s, cls, params, job_id)
                batched.ctx.session = None
                batched.ctx.progress = lambda value: self.set_progress(job_id, value)
                batched.run_batches()
            with state.db.transaction() as s:
                job = s.get(AsyncJob, job_id)
                user = s.get(User, job.user_id)
                cmd = self._command(s, cls, params, job_id)
                ctx = cmd.ctx
                if batched is not None:  # keep what the batches learned; rebind to this transaction
                    batched.ctx, batched.args = cmd.ctx, cmd.args
                    cmd = batched
                result = cmd.execute()
                body = result_body(result, ctx.role)
                if not _complete(s, job_id, state.msid, JOB_SUCCEEDED, body, code=0, complete_msid=state.msid):
                    raise _JobLost()
                if cls.event_type:
                    owner = getattr(cmd, "event_account", None) or ctx.account
                    events.record(s, event_type=cls.event_type, description="Successfully completed "
                                  + cmd.event_description(), user=user, account=owner,
                                  resource_id=job.instance_id, resource_type=cls.instance_type)
        except _JobLost:
            log.warning("job %s was settled by another server while it ran here; its result is discarded", job_id)
        except ApiError as err:
            self.fail(job_id, err, cls)
        except Exception:  # noqa: BLE001 - a bug must still end the job cleanly
            log.exception("job %s failed", job_id)
            self.fail(job_id, CloudRuntimeError(GENERIC_INTERNAL_TEXT), cls)

    def _command(self, s, cls, params: dict, job_id: int):  # noqa: ANN001, ANN202
        """Rebuild the command of a job from its stored parameters, inside transaction ``s``."""
        job = s.get(AsyncJob, job_id)
        user = s.get(User, job.user_id)
        ctx = CallContext(session=s, user=user, account=user.account, state=self.state, job_id=job_id,
                          progress=self._progress_writer(job_id, s))
        cmd = cls(ctx, parse_args(cls, params, s))
        if isinstance(cmd, AsyncCreateCommand):
            model = queue.INSTANCE_MODELS.get(cls.instance_type or "")
            cmd.created = s.get(model, job.instance_id) if model and job.instance_id else None
        return cmd

    def _progress_writer(self, job_id: int, job_session):  # noqa: ANN001, ANN202
        if self.state.db.is_sqlite:
            # The job's transaction holds SQLite's only write lock: a second transaction would
            # wait for it (and time out). Write in the job's own transaction instead.
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


class _JobLost(Exception):
    """The job stopped being this server's while it ran."""


def _owned_by(job_id: int, owner: int | None):  # noqa: ANN202
    """An UPDATE of a job still in progress and still held by ``owner``."""
    stmt = update(AsyncJob).where(AsyncJob.id == job_id, AsyncJob.job_status == JOB_IN_PROGRESS)
    if owner is None:
        return stmt.where(AsyncJob.job_executing_msid.is_(None))
    return stmt.where(AsyncJob.job_executing_msid == owner)


def _complete(session, job_id: int, owner: int | None, status: int, result: dict, *, code: int,
              complete_msid: int | None) -> bool:
    """Settle a job iff it is still in progress and held by ``owner``; True if this call did."""
    now = utcnow()
    values = {"job_status": status, "job_result_code": code,
              "job_result": json.dumps(result, separators=(",", ":"), ensure_ascii=False),
              "job_complete_msid": complete_msid, "job_executing_msid": None, "last_updated": now, "removed": now}
    return session.execute(_owned_by(job_id, owner).values(**values)
                           .execution_options(synchronize_session=False)).rowcount == 1


def wait_for(state: AppState, job_uuid: str, timeout: float = 30.0) -> AsyncJob:
    """Block until a job ends (for the CLI and tests that run in-process)."""
    deadline = time.monotonic() + timeout
    while True:
        with state.db.transaction() as s:
            job = s.scalars(select(AsyncJob).where(AsyncJob.uuid == job_uuid)).one()
            if job.job_status != JOB_IN_PROGRESS or time.monotonic() > deadline:
                return job
        time.sleep(0.05)
