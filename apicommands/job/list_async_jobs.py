"""``listAsyncJobs``."""
from sqlalchemy import select

from cloudstack_kms.api import declare as p
from cloudstack_kms.api.access import list_scope
from cloudstack_kms.api.command import ALL_ROLES, ListOwnedCommand, ListResult, _ListOwnedParams
from cloudstack_kms.api.listing import keyword_filter, paged
from cloudstack_kms.jobs.queue import job_view
from cloudstack_kms.models import Account, AsyncJob

from .responses import AsyncJobResponse


class ListAsyncJobs(ListOwnedCommand):
    api_name = "listAsyncJobs"
    description = "Lists all pending asynchronous jobs for the account."
    roles = ALL_ROLES
    response = AsyncJobResponse
    java_class = "org.apache.cloudstack.api.command.user.job.ListAsyncJobsCmd"

    class Params(_ListOwnedParams):
        startdate = p.date("The start date of the async job (use format \"yyyy-MM-dd'T'HH:mm:ss'+'SSSS\")")
        managementserverid = p.uuid("The id of the management server", since="4.19")

    def execute(self) -> ListResult:
        stmt = select(AsyncJob).join(Account, AsyncJob.account_id == Account.id)
        stmt = list_scope(self.ctx, stmt, AsyncJob.account_id, Account.domain_id, self.args)
        if self.arg("startdate"):
            stmt = stmt.where(AsyncJob.created >= self.args["startdate"])
        stmt = keyword_filter(stmt, self.args, AsyncJob.job_cmd)
        rows, total = paged(self.ctx.session, stmt, self.args, AsyncJob.id.desc())
        caller = (self.ctx.user, self.ctx.account)
        return ListResult(AsyncJobResponse, [job_view(self.ctx.session, j, caller) for j in rows], total)
