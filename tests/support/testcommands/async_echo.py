"""``testAsyncEcho``: an async command for exercising the job machinery from real clients.

* ``message`` is echoed back in the job result;
* ``sleepms`` keeps the job running that long (so a server can be killed under it);
* ``progress`` is reported as the job's progress before it ends;
* ``fail=true`` makes it raise a CloudRuntimeError (530);
* ``details`` (a map) is echoed back; ``secret`` (sensitive) only as its length;
* ``token`` is written to an event each time the command really executes, so a test
  can count executions and catch a job run twice.
"""
import time

from cloudstack_kms.api import declare as p
from cloudstack_kms.api.command import ALL_ROLES, AsyncCommand, AsyncParams, ObjectResult
from cloudstack_kms.api.declare import Out, ResponseObject
from cloudstack_kms.errors import CloudRuntimeError
from cloudstack_kms.services import events

EXEC_EVENT = "TEST.ECHO.EXEC"


class EchoResponse(ResponseObject):
    object_name = "echo"
    message = Out.string("the message sent")
    token = Out.string("the token sent")
    details = Out.map("the details sent, as key/value pairs")
    secretlength = Out.integer("the length of the secret sent (the secret itself is never shown)")


class TestAsyncEcho(AsyncCommand):
    api_name = "testAsyncEcho"
    description = "Test only: echoes a message from an async job"
    since = "4.23.0"
    roles = ALL_ROLES
    response = EchoResponse
    instance_type = "User"
    event_type = "TEST.ECHO"
    java_class = "org.apache.cloudstack.api.command.test.TestAsyncEchoCmd"

    class Params(AsyncParams):
        message = p.string("the message to echo")
        sleepms = p.integer("milliseconds to sleep before answering")
        fail = p.boolean("fail the job with a CloudRuntimeException")
        token = p.string("recorded in an event each time the command executes")
        details = p.map_("free key/value pairs, echoed back")
        progress = p.integer("a progress value (jobprocstatus) to report before finishing")
        secret = p.string("a sensitive value: sealed in the job row, never logged", sensitive=True)

    def instance(self):
        return self.ctx.user

    def execute(self) -> ObjectResult:
        sleep_ms = self.arg("sleepms", 0)
        if sleep_ms > 0:
            time.sleep(sleep_ms / 1000.0)
        if self.arg("progress") is not None:
            self.ctx.report_progress(self.args["progress"])
        if self.arg("fail"):
            raise CloudRuntimeError(f"testAsyncEcho failed as asked: {self.arg('message', '')}")
        if self.arg("token"):
            events.record(self.ctx.session, event_type=EXEC_EVENT, description=f"executed {self.args['token']}",
                          user=self.ctx.user, account=self.ctx.account)
        details = p.map_pairs(self.arg("details", []))
        secret = self.arg("secret")
        return ObjectResult(EchoResponse, {"message": self.arg("message"), "token": self.arg("token"),
                                           "details": details or None,
                                           "secretlength": len(secret) if secret is not None else None})

    def event_description(self) -> str:
        return "test echo"
