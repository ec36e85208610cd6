"""``queryAsyncJobResult``: the flat job fields that every client polls."""
from cloudstack_kms.api import declare as p
from cloudstack_kms.api.access import can_see_account
from cloudstack_kms.api.command import ALL_ROLES, BaseParams, Command, FlatResult
from cloudstack_kms.errors import invalid_uuid
from cloudstack_kms.jobs.queue import finished_jobs, job_view, poll_query, poll_recorder
from cloudstack_kms.models import Account

from .responses import AsyncJobResponse


class QueryAsyncJobResult(Command):
    api_name = "queryAsyncJobResult"
    description = "Retrieves the current status of asynchronous job."
    roles = ALL_ROLES
    response = AsyncJobResponse
    java_class = "org.apache.cloudstack.api.command.user.job.QueryAsyncJobResultCmd"
    read_only = True

    class Params(BaseParams):
        jobid = p.uuid("the ID of the asynchronous job", required=True)

    def execute(self) -> FlatResult:
        session = self.ctx.session
        finished = finished_jobs(self.ctx.state).answer(self.args["jobid"], self.ctx.account.id)
        if finished is not None:  # this process finished the caller's job in its request: no query
            job_id, view = finished
            self._note_polled(job_id)
            return FlatResult(AsyncJobResponse.render(view, self.ctx.role))
        # One query: the job's columns and its instance's uuid.
        job = session.execute(poll_query(), {"job_uuid": self.args["jobid"]}).first()
        if job is None:
            raise invalid_uuid(self.api_name, "jobid", self.args["jobid"])
        if job.account_id != self.ctx.account.id:  # (a caller's own job needs no lookup)
            owner = session.get(Account, job.account_id)
            if owner is None or not can_see_account(self.ctx, owner):
                raise invalid_uuid(self.api_name, "jobid", self.args["jobid"])
        self._note_polled(job.id)
        view = job_view(session, job, (self.ctx.user, self.ctx.account))
        return FlatResult(AsyncJobResponse.render(view, self.ctx.role))

    def _note_polled(self, job_id: int) -> None:
        if not self.ctx.state.db.is_sqlite:  # SQLite polls run read-only so they never wait for a job
            poll_recorder(self.ctx.state).polled(self.ctx.session, job_id)  # last_polled, written behind
