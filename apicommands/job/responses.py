"""The AsyncJobResponse fields, shared by ``queryAsyncJobResult`` and ``listAsyncJobs``."""
from cloudstack_kms.api.declare import Out, ResponseObject


class AsyncJobResponse(ResponseObject):
    object_name = "asyncjobs"
    jobid = Out.uuid("the ID of the async job")
    accountid = Out.uuid("the account id that executed the async command")
    account = Out.string("the account that executed the async command")
    domainid = Out.uuid("the domain id that executed the async command")
    domainpath = Out.string("the domain that executed the async command")
    userid = Out.uuid("the user that executed the async command")
    cmd = Out.string("the async command executed")
    jobstatus = Out.integer("the current job status-should be 0 for PENDING")
    jobprocstatus = Out.integer("the progress information of the PENDING job")
    jobresultcode = Out.integer("the result code for the job")
    jobresulttype = Out.string("the result type")
    jobresult = Out.map("the result reason")
    jobinstancetype = Out.string("the instance/entity object related to the job")
    jobinstanceid = Out.uuid("the unique ID of the instance/entity object related to the job")
    managementserverid = Out.long("the msid of the management server on which the job is running")
    created = Out.date("the created date of the job")
    completed = Out.date("the completed date of the job")
