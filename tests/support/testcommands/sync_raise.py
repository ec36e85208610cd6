"""``testSyncRaise``: a sync command that writes, then raises the error it is asked for.

It exercises the dispatcher's error mapping and its transaction: the event written before
the error must be rolled back with it.
"""
from cloudstack_kms.api import declare as p
from cloudstack_kms.api.command import ALL_ROLES, BaseParams, Command, SuccessResult
from cloudstack_kms.errors import (CloudRuntimeError, InvalidParameterValue, PermissionDenied,
                                       ResourceUnavailable)
from cloudstack_kms.services import events

EVENT = "TEST.SYNC.RAISE"
ERRORS = {
    "runtime": CloudRuntimeError,
    "invalid": InvalidParameterValue,
    "denied": PermissionDenied,
    "unavailable": ResourceUnavailable,
}


class TestSyncRaise(Command):
    api_name = "testSyncRaise"
    description = "Test only: records an event, then raises the error named by kind"
    roles = ALL_ROLES
    java_class = "org.apache.cloudstack.api.command.test.TestSyncRaiseCmd"

    class Params(BaseParams):
        kind = p.string("runtime, invalid, denied, unavailable, bug (a plain Python error) or none",
                        required=True)
        message = p.string("the error text; also written to the event")

    def execute(self) -> SuccessResult:
        message = self.arg("message", "")
        events.record(self.ctx.session, event_type=EVENT, description=f"raising {message}", user=self.ctx.user,
                      account=self.ctx.account)
        kind = self.args["kind"]
        if kind == "bug":
            raise ZeroDivisionError(f"secret internals {message}")
        if kind in ERRORS:
            raise ERRORS[kind](message)
        return SuccessResult(displaytext=message or None)
