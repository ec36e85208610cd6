"""Submitting jobs and showing them (``queryAsyncJobResult``, ``listAsyncJobs``)."""
from __future__ import annotations

import json
from typing import Any

from sqlalchemy.orm import Session

from ..api.command import AsyncCommand, AsyncCreateCommand, FlatResult
from ..api.context import CallContext
from ..models import Account, AsyncJob, Domain, User, new_uuid
from ..models.jobs import JOB_IN_PROGRESS
from ..services import events
from ..wire import format_date

#: ``jobinstancetype`` → model, so ``jobinstanceid`` can show the object's uuid.
INSTANCE_MODELS: dict[str, type] = {}


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


def submit(ctx: CallContext, cls: type[AsyncCommand], params: dict[str, str], args: dict[str, Any]) -> FlatResult:
    cmd = cls(ctx, args)
    custom = args.get("customjobid") if ctx.is_root_admin else None
    # The uuid is known before the insert: the sealed parameters are bound to it, so the row is
    # written once, complete.
    job = AsyncJob(uuid=custom or new_uuid(), user_id=ctx.user.id, account_id=ctx.account.id,
                   job_cmd=cls.java_class or cls.api_name, job_status=JOB_IN_PROGRESS, job_process_status=0,
                   job_result_code=0, job_init_msid=ctx.state.msid, instance_type=cls.instance_type)
    job.job_cmd_info = seal_params(ctx, cls, params, job.uuid)
    created = None
    if isinstance(cmd, AsyncCreateCommand):
        created = cmd.create()
        ctx.session.flush()
    instance = created if created is not None else cmd.instance()
    if instance is not None:
        job.instance_id = instance.id
    ctx.session.add(job)
    ctx.session.flush()
    if cls.event_type:
        owner = getattr(cmd, "event_account", None) or ctx.account
        events.record(ctx.session, event_type=cls.event_type, description=cmd.event_description(),
                      user=ctx.user, account=owner, state=events.SCHEDULED,
                      resource_id=getattr(instance, "id", None), resource_type=cls.instance_type)
    data: dict[str, Any] = {"jobid": job.uuid}
    if created is not None:
        data = {"id": created.uuid, "jobid": job.uuid}
    return FlatResult(data)


def job_view(session: Session, job: AsyncJob) -> dict[str, Any]:
    """The flat AsyncJobResponse fields."""
    user = session.get(User, job.user_id)
    account = session.get(Account, job.account_id)
    domain = session.get(Domain, account.domain_id) if account else None
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
            row = session.get(model, job.instance_id)
            view["jobinstanceid"] = getattr(row, "uuid", None)
    return view
