"""A database outage under load is survived without a server restart, and logged briefly.

A real server (2 gunicorn workers, as operators run it) serves signed ``listZones`` and
``listKMSKeys`` calls continuously while its private MariaDB server (tests/support/mariadb_instance.py)
goes away for a few seconds, cleanly (SIGTERM) or as a crash (SIGKILL), and comes back. Wanted:

* every answer during the outage is CloudStack's error envelope (HTTP 530 and JSON
  ``{"<command>response": {"errorcode": 530, "errortext": ...}}``), never an HTML page, a
  gunicorn 500/502, a reset connection or a hang;
* the first success comes within ``RECOVERY_BOUND_SEC`` of the database accepting connections,
  and every answer after it succeeds;
* the gunicorn master and its workers are the same processes before and after;
* the server log gets one short line per failed request and no traceback, and never the
  caller's secret key.

530 and not 401: the caller's credentials are fine, the server cannot check them; a 401 would
make clients (CloudMonkey, the UI) drop valid keys or sessions. Upstream answers 530 too when
its database is gone (the API servlet turns the CloudRuntimeException into INTERNAL_ERROR).

It needs its own ``mariadbd``, so it runs on the MariaDB pass only (``KMS_TEST_MYSQL_URL`` set).
"""
from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.client import sign
from tests.support.mariadb_instance import MariaDBInstance, server_on_private_mariadb
from tests.support.server import KmsEnv, ServerProcess

pytestmark = [pytest.mark.slow, pytest.mark.mysql]

MYSQL_URL = os.environ.get("KMS_TEST_MYSQL_URL", "")
OUTAGE_SEC = 5.0
#: The first success must come this soon after the database accepts connections again.
RECOVERY_BOUND_SEC = 2.0
#: Load after the first success, all of which must succeed.
AFTER_SEC = 2.5
#: A request that takes longer than this is a hang.
CLIENT_TIMEOUT_SEC = 10.0
#: Error codes a request may get while the database is away (CloudStack's INTERNAL_ERROR).
OUTAGE_CODES = {530}
#: Log lines about failed requests may exceed the failed answers by this much.
LOG_SLACK = 5
COMMANDS = ("listZones", "listZones", "listKMSKeys")
LOAD_THREADS = 2

# "2026-01-01 12:00:00,123 ERROR cloudstack_kms.api.endpoint: command listZones failed ..."
_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (?P<level>[A-Z]+) (?P<logger>[\w.]+): ")
_REQUEST_LOGGER = re.compile(r"^cloudstack_kms\.api(\.|$)")


@dataclass
class Answer:
    sent: float
    received: float
    command: str
    status: int | None  # None: no HTTP answer at all (reset, refused, timeout)
    body: Any
    text: str
    content_type: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 200

    def describe(self) -> str:
        return f"{self.command} sent at {self.sent:+.2f}s -> {self.status}: {self.text[:300]!r}"


@dataclass
class Load:
    """Threads sending signed read calls back to back, each answer recorded with its times."""

    url: str
    keys: dict[str, str]
    t0: float
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def call(self, http: requests.Session, command: str) -> Answer:
        query = {"command": command, "response": "json", "apiKey": self.keys["apikey"]}
        query["signature"] = sign(query, self.keys["secretkey"])
        sent = time.monotonic() - self.t0
        try:
            resp = http.get(self.url, params=query, timeout=CLIENT_TIMEOUT_SEC)
        except requests.RequestException as exc:
            return Answer(sent, time.monotonic() - self.t0, command, None, None, f"{type(exc).__name__}: {exc}")
        try:
            body = resp.json()
        except ValueError:
            body = None
        return Answer(sent, time.monotonic() - self.t0, command, resp.status_code, body, resp.text,
                      resp.headers.get("Content-Type", ""))

    def _run(self, offset: int) -> None:
        http = requests.Session()
        i = offset
        while not self._stop.is_set():
            answer = self.call(http, COMMANDS[i % len(COMMANDS)])
            i += 1
            with self._lock:
                self.answers.append(answer)
            if answer.status is None:
                http = requests.Session()  # a broken keep-alive connection is not reused
            self._stop.wait(0.01)

    def first_success(self, since: float) -> float | None:
        """When the first call sent at or after ``since`` was answered successfully."""
        with self._lock:
            return min((a.received for a in self.answers if a.ok and a.sent >= since), default=None)

    def start(self) -> "Load":
        self._threads = [threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(LOAD_THREADS)]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> list[Answer]:
        self._stop.set()
        for thread in self._threads:
            thread.join(CLIENT_TIMEOUT_SEC + 5)
        with self._lock:
            return sorted(self.answers, key=lambda a: a.sent)


def clean_error(answer: Answer) -> str | None:
    """Why an answer is not CloudStack's error envelope for the outage, or None."""
    if answer.status is None:
        return "no HTTP answer"
    if answer.status not in OUTAGE_CODES:
        return f"HTTP {answer.status}, wanted one of {sorted(OUTAGE_CODES)}"
    if "json" not in answer.content_type:
        return f"Content-Type {answer.content_type!r}"
    name = f"{answer.command.lower()}response"
    if not isinstance(answer.body, dict) or list(answer.body) != [name]:
        return f"body is not {{{name!r}: ...}}"
    inner = answer.body[name]
    if not isinstance(inner, dict) or inner.get("errorcode") != answer.status \
            or not isinstance(inner.get("errortext"), str) or not inner["errortext"]:
        return "no errorcode equal to the HTTP status, or no errortext"
    if "Traceback" in answer.text or "sqlalchemy" in answer.text.lower() or "mysql" in answer.text.lower():
        return "error text leaks internals"
    return None


def gunicorn_pids(master: int) -> tuple[int, frozenset[int]]:
    """The master and the processes it forked (the workers)."""
    children = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...; comm may hold spaces and parentheses
        if int(stat.rsplit(")", 1)[1].split()[1]) == master:
            children.add(int(entry.name))
    return master, frozenset(children)


def log_records(text: str) -> list[tuple[str, str, list[str]]]:
    """(level, logger, lines) of each application log record; access-log lines are left out."""
    records: list[tuple[str, str, list[str]]] = []
    current: list[str] | None = None
    for line in text.splitlines():
        match = _RECORD.match(line)
        if match:
            current = [line]
            records.append((match["level"], match["logger"], current))
        elif line.startswith("127.0.0.1 - ") or line.startswith("["):  # gunicorn's access and own log
            current = None
        elif current is not None:
            current.append(line)
    return records


# ---------------------------------------------------------------- the rig
@dataclass
class Rig:
    db: MariaDBInstance
    kms: KmsEnv
    server: ServerProcess
    keys: dict[str, str]


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    if not MYSQL_URL:
        pytest.skip("the database-outage test starts its own mariadbd; it runs on the MariaDB pass "
                    "(set KMS_TEST_MYSQL_URL)")
    with server_on_private_mariadb(tmp_path_factory.mktemp("outage-data"), "kms_outage", workers=2) as (
            db, kms, server):
        yield Rig(db, kms, server, kms.admin_keys())


def wait_for_workers(master: int, count: int, timeout: float = 30.0) -> frozenset[int]:
    deadline = time.monotonic() + timeout
    while True:
        _, workers = gunicorn_pids(master)
        if len(workers) >= count or time.monotonic() > deadline:
            return workers
        time.sleep(0.1)


@pytest.mark.parametrize("how", ["stop", "kill9"])
def test_database_outage_is_survived_and_logged_briefly(rig: Rig, how: str):
    db, server = rig.db, rig.server
    if not db.running:  # an earlier case failed half-way
        db.start()
    assert server.proc is not None
    master, workers = server.proc.pid, wait_for_workers(server.proc.pid, 2)
    assert len(workers) == 2, f"gunicorn should run 2 workers, has {sorted(workers)}"

    t0 = time.monotonic()
    load = Load(server.url, rig.keys, t0).start()
    try:
        time.sleep(1.5)  # warm: both workers have pooled connections to lose
        log_offset = server.log_path.stat().st_size
        down_at = time.monotonic() - t0
        (db.stop() if how == "stop" else db.kill())
        gone_at = time.monotonic() - t0
        time.sleep(OUTAGE_SEC)
        up_at = db.start() - t0  # when it accepts connections again
        deadline = up_at + RECOVERY_BOUND_SEC + 1.0
        while load.first_success(since=gone_at) is None and time.monotonic() - t0 < deadline:
            time.sleep(0.05)
        time.sleep(AFTER_SEC)
    finally:
        answers = load.stop()
    time.sleep(0.5)  # the log lines of the last answers
    log_text = server.log()
    outage_log = server.log_path.read_bytes()[log_offset:].decode(errors="replace")

    before = [a for a in answers if a.received < down_at]
    during = [a for a in answers if a.received >= down_at and a.sent < up_at]
    failed = [a for a in answers if not a.ok]
    first_success = load.first_success(since=gone_at)
    statuses: dict[str, int] = {}
    for a in during:
        statuses[str(a.status)] = statuses.get(str(a.status), 0) + 1
    slowest = max((a.received - a.sent for a in during), default=0.0)
    summary = (f"{how}: database down at {down_at:.2f}s (gone {gone_at:.2f}s), up at {up_at:.2f}s; "
               f"{len(answers)} answers, {len(failed)} failed, first success after the outage at "
               f"{first_success if first_success is None else round(first_success, 2)}s; answers during the outage "
               f"by status: {statuses}, slowest {slowest:.2f}s; e.g. {failed[0].text[:200] if failed else None!r}")

    # --- the answers
    assert before and all(a.ok for a in before), \
        f"{summary}\nbefore the outage every call must succeed: {[a.describe() for a in before if not a.ok][:5]}"
    unclean = [(a, why) for a in failed if (why := clean_error(a))]
    assert len(unclean) == 0, (f"{summary}\n{len(unclean)} answers were not CloudStack's error envelope, e.g.:\n"
                         + "\n".join(f"  {why}: {a.describe()}" for a, why in unclean[:8]))
    failed_during = [a for a in during if not a.ok]
    assert len(failed_during) >= 5, f"{summary}\nthe outage produced hardly any failed calls: is the load running?"
    assert first_success is not None, f"{summary}\nno call succeeded after the database came back"
    assert first_success - up_at <= RECOVERY_BOUND_SEC, \
        f"{summary}\nthe first success came {first_success - up_at:.2f}s after the database was back"
    late = [a for a in answers if not a.ok and a.sent >= first_success]
    assert len(late) == 0, (f"{summary}\n{len(late)} calls failed after the first success, e.g.:\n"
                      + "\n".join(a.describe() for a in late[:5]))
    after = [a for a in answers if a.sent >= up_at + RECOVERY_BOUND_SEC]
    assert len(after) >= 10 and all(a.ok for a in after), f"{summary}\ntoo few or failed calls after recovery"

    # --- the processes
    assert server.proc.poll() is None, f"{summary}\nthe server exited: {log_text[-3000:]}"
    now_master, now_workers = gunicorn_pids(server.proc.pid)
    assert (now_master, now_workers) == (master, workers), \
        f"{summary}\ngunicorn processes changed: master {master}, workers {sorted(workers)} -> {sorted(now_workers)}"

    # --- the log (every record is one write() of a worker, so records do not interleave)
    assert rig.keys["secretkey"] not in log_text, "the API secret key appears in the server log"
    records = [r for r in log_records(outage_log) if r[0] in ("WARNING", "ERROR", "CRITICAL")]
    request_records = [lines for _, logger, lines in records if _REQUEST_LOGGER.match(logger)]
    other_records = [(logger, lines) for _, logger, lines in records if not _REQUEST_LOGGER.match(logger)]
    by_logger: dict[str, int] = {}
    for level, logger, lines in records:
        key = f"{level} {logger}" + (" with traceback" if has_traceback(lines) else "")
        by_logger[key] = by_logger.get(key, 0) + 1
    examples = "\n".join(f"  {' | '.join(lines[:2])[:240]}" for lines in request_records[:3])
    log_summary = (f"{summary}\nserver log during the outage: {len(outage_log.splitlines())} lines, "
                   f"{outage_log.count('Traceback (most recent call last)')} 'Traceback' lines; "
                   f"warning/error records: {by_logger}\nrequest failure records, e.g.:\n{examples}")
    print(log_summary)
    with_traceback = [lines for lines in request_records if has_traceback(lines)]
    assert len(with_traceback) == 0, (
        f"{log_summary}\n{len(with_traceback)} of {len(request_records)} request failure records carry a "
        f"traceback ({len(failed)} failed calls); wanted one line per failed request, not a traceback")
    assert 1 <= len(request_records) <= len(failed) + LOG_SLACK, (
        f"{log_summary}\nwanted about one log line per failed request: {len(request_records)} records from "
        f"cloudstack_kms.api for {len(failed)} failed calls (slack {LOG_SLACK})")
    multi_line = [lines for lines in request_records if len(lines) > 1 or len(lines[0]) > 500]
    assert len(multi_line) == 0, (f"{log_summary}\n{len(multi_line)} request failure records are not one short line, "
                            f"e.g.:\n" + "\n".join(multi_line[0][:10]))
    # Job and heartbeat loops, the rewrap task, SQLAlchemy's pool: they must not fill the log either.
    background = [(logger, lines) for logger, lines in other_records if has_traceback(lines)]
    assert len(background) == 0, (
        f"{log_summary}\nother loggers (background loops, SQLAlchemy) wrote {len(background)} tracebacks during "
        f"the outage "
        f"({sorted({logger for logger, _ in background})}); wanted no traceback in the log during a database "
        f"outage, e.g.:\n" + "\n".join(background[0][1][:3]))


def has_traceback(lines: list[str]) -> bool:
    return any(line.startswith("Traceback (most recent call last)") for line in lines)


def test_a_restart_while_the_server_is_idle_costs_no_request(rig: Rig):
    """The pool's connections die with a restart nobody noticed (no request in flight): the first
    request afterwards must still succeed (an idle connection is checked before it serves)."""
    db, server = rig.db, rig.server
    if not db.running:
        db.start()
    load = Load(server.url, rig.keys, time.monotonic())
    http = requests.Session()
    for _ in range(8):  # both workers hold pooled connections
        assert load.call(http, "listZones").ok
    db.stop()
    db.start()
    time.sleep(1.5)  # longer than the pool's idle threshold, and the restart is complete
    answers = [load.call(requests.Session(), "listZones") for _ in range(6)]
    assert all(a.ok for a in answers), [a.describe() for a in answers if not a.ok]
