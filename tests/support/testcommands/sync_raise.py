"""``testSyncRaise``: a sync command that writes, then raises the error it is asked for.

It exercises the dispatcher's error mapping and its transaction: the event written before
the error must be rolled back with it. ``kind=conflict`` fails the first ``conflicts`` runs
for a ``message`` with a write conflict as the database reports it (1213), which a single
database cannot be made to produce on cue (tests/galera causes real ones).
"""
import threading

from sqlalchemy.exc import OperationalError

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
        kind = p.string("runtime, invalid, denied, unavailable, bug (a plain Python error), conflict or none",
                        required=True)
        message = p.string("the error text; also written to the event")
        conflicts = p.integer("with kind=conflict: how many runs for this message fail with a write conflict")

    def execute(self) -> SuccessResult:
        message = self.arg("message", "")
        events.record(self.ctx.session, event_type=EVENT, description=f"raising {message}", user=self.ctx.user,
                      account=self.ctx.account)
        kind = self.args["kind"]
        if kind == "bug":
            raise ZeroDivisionError(f"secret internals {message}")
        if kind in ERRORS:
            raise ERRORS[kind](message)
        if kind == "conflict" and _count_run(message) <= self.arg("conflicts", 0):
            raise OperationalError("COMMIT", None, _DriverError(1213, "Deadlock found when trying to get lock; "
                                                                      "try restarting transaction"))
        return SuccessResult(displaytext=message or None)


class _DriverError(Exception):
    """Shaped like a MySQL driver's error: ``args`` = (code, text)."""


_runs: dict[str, int] = {}
_runs_lock = threading.Lock()


def _count_run(message: str) -> int:
    with _runs_lock:
        _runs[message] = _runs.get(message, 0) + 1
        return _runs[message]
