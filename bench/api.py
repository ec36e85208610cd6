"""API throughput side by side with a bare Flask floor, on SQLite and MariaDB, in one command.

    python bench/api.py [--db-url URL ...] [--both] [--seconds S] [--rounds R] [--workers W] [--threads T]
                        [--connections C] [--clients N] [--volumes V] [--skip-create]
                        [--provider database|pkcs11] [--load auto|wrk|python] [--keep]

    python bench/api.py                                                   # SQLite
    python bench/api.py --db-url mysql+mysqldb://root@127.0.0.1:3306     # MariaDB
    python bench/api.py --both                                            # SQLite, then MariaDB

``--db-url`` is a database *server* URL as for ``bench/volumes.py`` (no database name): a fresh
database is made on it for the run and dropped at the end (``sqlite://``: a file in the temporary
directory). It may be repeated; one table is printed per URL. Without it the run is on SQLite;
``--both`` runs SQLite and then MariaDB (``mysql+mysqldb://root@127.0.0.1:3306``, or the server
``--db-url`` names) and prints both tables at the end.

Everything is private to the run and removed at the end, also on Ctrl-C or SIGTERM: a temporary
directory (data directory with the master key, SQLite file, server logs, SoftHSM2 token with
``--provider pkcs11``), the database, and two servers on free ports: the KMS (``cloudstack-kms
serve --workers W --threads T``) and the floor (``bench/floor_app.py``: a bare Flask app answering
a small JSON body, served by the same ``cloudstack_kms.cli`` code path, so with the very same
gunicorn settings: gthread, W workers, T threads, access log, keep-alive).

Rows:

* ``floor``: ``GET /client/api`` on the bare Flask app: what gunicorn + Flask cost alone on this
  host at this moment; every other row is compared to it;
* ``signed listZones``: one fixed URL (``response=json``, ``apiKey``, HMAC-SHA1 ``signature``,
  version 1 without ``expires``, so it can be replayed), as CloudMonkey or any API client sends;
* ``session listZones``: as the web UI sends it after ``command=login``: ``sessionkey=`` in the
  query string plus the ``JSESSIONID`` and ``sessionkey`` cookies;
* ``createVolume + poll``: ``--clients`` client processes, each with its own keep-alive connection, each
  looping ``createVolume`` (encrypted disk offering, a KMS key of the ``--provider``, no image:
  ``storage.volume.images=false``) and then ``queryAsyncJobResult`` (first after 10 ms, then
  every 50 ms) until its job is done. The rate is the volumes divided by the time from the first
  submission to the last job done; p50/p99 are of submission -> job done per volume.

Load for the first three rows comes from ``wrk -t2 -c<connections> -d<seconds>s --latency``
(``apt-get install -y wrk``); without wrk (or with ``--load python``) from a multi-process Python
load generator keeping as many keep-alive connections busy. Each row is checked first with one
request (HTTP 200 and a zone in the body) and every measurement must have no non-2xx answer and
no socket error: a benchmark of 401s is worthless, so the run stops with exit status 1.

The rows alternate in rounds (floor, signed, session, floor, signed, session, ...) after a short
warm-up, so drifting load from elsewhere on the host weighs on all alike. Rates, p50 and p99 are
the medians over the rounds; the ratio is each row's rate over the floor's rate *of the same
round*, median over rounds. Targets: signed and session ``listZones`` at >= 0.25 of the floor,
``createVolume`` at >= 200 volumes/s (a MariaDB target: on SQLite it is shown for information).
The script prints PASS or FAIL and exits 0 either way: it measures, it does not gate.
"""
from __future__ import annotations

import argparse
import http.client
import json
import math
import multiprocessing as mp
import os
import queue
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
import volumes as vb  # noqa: E402  (bench/volumes.py: signed client, database and server set-up)

import requests  # noqa: E402

from tests.support.client import sign  # noqa: E402
from tests.support.server import free_port  # noqa: E402

ROOT = vb.ROOT
FLOOR_APP = Path(__file__).resolve().parent / "floor_app.py"
MARIADB_URL = "mysql+mysqldb://root@127.0.0.1:3306"
LIST_RATIO_TARGET = 0.25
CREATE_TARGET = vb.TARGET  # volumes/s, metadata only, on MariaDB
POLL_SECONDS = 0.05
WARMUP_SECONDS = 1


class BenchError(RuntimeError):
    """The run cannot measure what it should (errors answered, a server down): exit status 1."""


# ------------------------------------------------------------------ the floor server
class FloorServer:
    """``bench/floor_app.py`` as its own process group, like :class:`tests.support.server.ServerProcess`."""

    def __init__(self, tmp: Path, workers: int, threads: int) -> None:
        self.port = free_port()
        self.tmp, self.workers, self.threads = tmp, workers, threads
        self.log_path = tmp / "floor.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/client/api"

    def start(self, timeout: float = 30.0) -> "FloorServer":
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH"))
                                                           if p)}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, str(FLOOR_APP), "--data-dir", str(self.tmp / "floor-data"), "serve", "--host",
                 "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers), "--threads",
                 str(self.threads)], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"floor server exited: {self.log_path.read_text()[-3000:]}")
            try:
                requests.get(self.url, timeout=5)
                return self
            except requests.RequestException:
                time.sleep(0.1)
        raise BenchError("floor server did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


# ------------------------------------------------------------------ HTTP load
@dataclass
class Target:
    name: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Load:
    rate: float  # requests/s
    p50: float  # ms
    p99: float  # ms
    requests: int
    errors: str  # empty when every answer was 2xx and no socket error happened


def verify(target: Target) -> None:
    """One request with ``requests``: HTTP 200 and a zone in the JSON body."""
    resp = requests.get(target.url, headers=target.headers, timeout=60)
    try:
        zones = resp.json()["listzonesresponse"]["zone"]
    except (ValueError, KeyError, TypeError):
        zones = []
    if resp.status_code != 200 or not zones:
        raise BenchError(f"{target.name}: {resp.status_code} {resp.text[:500]}")


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text).groups()
    return float(value) * _UNITS[unit]


def parse_wrk(out: str) -> Load:
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    count = re.search(r"(\d+) requests in", out)
    if not (rate and p50 and p99 and count):
        raise BenchError(f"cannot read wrk's output:\n{out}")
    problems = []
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if non2xx and int(non2xx.group(1)):
        problems.append(f"{non2xx.group(1)} non-2xx/3xx responses")
    sockets = re.search(r"Socket errors:\s+(.*)", out)
    if sockets and any(int(n) for n in re.findall(r"\d+", sockets.group(1))):
        problems.append(f"socket errors: {sockets.group(1).strip()}")
    return Load(float(rate.group(1)), _ms(p50.group(1)), _ms(p99.group(1)), int(count.group(1)), "; ".join(problems))


def wrk_load(target: Target, connections: int, seconds: float) -> Load:
    cmd = ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
           "--timeout", "60s"]
    for name, value in target.headers.items():
        cmd += ["-H", f"{name}: {value}"]
    proc = subprocess.run([*cmd, target.url], capture_output=True, text=True, timeout=seconds + 120)
    if proc.returncode != 0:
        raise BenchError(f"wrk failed ({proc.returncode}): {proc.stderr}{proc.stdout}")
    return parse_wrk(proc.stdout)


def _python_load_proc(url: str, headers: dict[str, str], threads: int, start: float, seconds: float,
                      out: mp.Queue) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    results: list[tuple[list[float], int, int]] = []

    def run() -> None:
        latencies: list[float] = []
        bad = errors = 0
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        while time.monotonic() < start:
            time.sleep(0.001)
        deadline = start + seconds
        while (t0 := time.monotonic()) < deadline:
            try:
                conn.request("GET", path, headers=headers)
                resp = conn.getresponse()
                resp.read()
                latencies.append((time.monotonic() - t0) * 1000)
                if not 200 <= resp.status < 400:
                    bad += 1
            except (OSError, http.client.HTTPException):
                errors += 1
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        conn.close()
        results.append((latencies, bad, errors))

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    out.put(([x for r in results for x in r[0]], sum(r[1] for r in results), sum(r[2] for r in results)))


def python_load(target: Target, connections: int, seconds: float) -> Load:
    """The fallback: ``connections`` keep-alive connections, one per thread, over a few processes."""
    procs_n = max(1, min(connections, os.cpu_count() or 2))
    shares = [connections // procs_n + (i < connections % procs_n) for i in range(procs_n)]
    out: mp.Queue = mp.Queue()
    start = time.monotonic() + 0.5
    procs = [mp.Process(target=_python_load_proc, args=(target.url, target.headers, n, start, seconds, out))
             for n in shares]
    try:
        for p in procs:
            p.start()
        parts = [out.get(timeout=seconds + 120) for _ in procs]
        for p in procs:
            p.join()
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
                p.join()
    latencies = sorted(x for part in parts for x in part[0])
    bad, errors = sum(p[1] for p in parts), sum(p[2] for p in parts)
    problems = "; ".join(s for s in (f"{bad} non-2xx/3xx responses" if bad else "",
                                     f"{errors} socket errors" if errors else "") if s)
    if not latencies:
        return Load(0.0, 0.0, 0.0, 0, problems or "no answer")
    return Load(len(latencies) / seconds, percentile(latencies, 50), percentile(latencies, 99), len(latencies),
                problems)


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return math.nan
    return sorted_values[max(0, math.ceil(pct / 100 * len(sorted_values)) - 1)]


# ------------------------------------------------------------------ createVolume + poll
class LightClient:
    """A signed-request client on one keep-alive ``http.client`` connection: a few times cheaper
    per call than ``requests``, so that 16 client processes leave the CPU to the server they
    measure (on a 2-core host they took a third of it)."""

    def __init__(self, url: str, apikey: str, secret: str) -> None:
        parts = urlsplit(url)
        self.host, self.port, self.path = parts.hostname, parts.port, parts.path
        self.apikey, self.secret = apikey, secret
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)

    def call(self, command: str, **params: str) -> dict:
        query = {"command": command, "response": "json", **params, "apiKey": self.apikey}
        query["signature"] = sign(query, self.secret)
        target = self.path + "?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in query.items())
        try:
            self.conn.request("GET", target)
            resp = self.conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError):
            # The server closed an idle keep-alive connection as this request went out: nothing
            # was processed, so send it again on a new connection.
            self.conn.close()
            self.conn.request("GET", target)
            resp = self.conn.getresponse()
        inner = next(iter(json.loads(resp.read()).values()))
        if resp.status != 200:
            raise RuntimeError(f"{command} -> {resp.status}: {inner.get('errortext')}")
        return inner

    def wait(self, jobid: str, interval: float) -> dict:
        """The finished job: polled as :meth:`bench.volumes.Api.wait` polls (first after interval / 5)."""
        delay = interval / 5
        while True:
            time.sleep(delay)
            job = self.call("queryAsyncJobResult", jobid=jobid)
            if job["jobstatus"] != 0:
                return job
            delay = interval


def _create_proc(url: str, apikey: str, secret: str, params: dict[str, str], remaining, start: float,
                 out: mp.Queue) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    api = LightClient(url, apikey, secret)
    done: list[tuple[float, float, str]] = []  # (submitted, finished, error or "")
    while time.monotonic() < start:
        time.sleep(0.001)
    while True:
        with remaining.get_lock():
            if remaining.value <= 0:
                break
            remaining.value -= 1
            n = remaining.value
        t0 = time.monotonic()
        try:
            job = api.wait(api.call("createVolume", name=f"bench-{os.getpid()}-{n}", **params)["jobid"], POLL_SECONDS)
            error = "" if job["jobstatus"] == 1 else str(job.get("jobresult"))[:300]
        except Exception as exc:  # noqa: BLE001 - counted and shown
            error = repr(exc)[:300]
        done.append((t0, time.monotonic(), error))
    out.put(done)


@dataclass
class CreateResult:
    volumes: int
    seconds: float
    p50: float
    p99: float
    errors: list[str]

    @property
    def rate(self) -> float:
        return (self.volumes - len(self.errors)) / self.seconds if self.seconds else 0.0


def create_volumes(api: vb.Api, params: dict[str, str], count: int, clients: int) -> CreateResult:
    remaining = mp.Value("i", count)
    out: mp.Queue = mp.Queue()
    start = time.monotonic() + 0.5
    procs = [mp.Process(target=_create_proc, args=(api.url, api.apikey, api.secret, params, remaining, start, out))
             for _ in range(clients)]
    try:
        for p in procs:
            p.start()
        results = []
        for _ in procs:
            while True:
                try:
                    results.append(out.get(timeout=1))
                    break
                except queue.Empty:
                    if not any(p.is_alive() for p in procs) and out.empty():
                        raise BenchError("createVolume clients died") from None
        for p in procs:
            p.join()
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
                p.join()
    done = [d for r in results for d in r]
    latencies = sorted((t1 - t0) * 1000 for t0, t1, _ in done)
    seconds = max(t1 for _, t1, _ in done) - min(t0 for t0, _, _ in done) if done else 0.0
    return CreateResult(len(done), seconds, percentile(latencies, 50), percentile(latencies, 99),
                        [e for _, _, e in done if e])


# ------------------------------------------------------------------ one database
@dataclass
class Row:
    name: str
    unit: str
    rate: float
    p50: float
    p99: float
    ratio: float | None
    note: str = ""


@dataclass
class Table:
    backend: str
    rows: list[Row]
    header: str


def backend_name(url: str) -> str:
    return "SQLite" if url.startswith("sqlite") else "MariaDB"


def bench_database(base_url: str, tmp: Path, floor: FloorServer, args: argparse.Namespace, load) -> Table:
    backend = backend_name(base_url)
    providers = ["database"] + (["pkcs11"] if args.provider == "pkcs11" else [])
    with vb.bench_server(base_url, tmp, args.workers, providers,
                         extra_args=("--threads", str(args.threads))) as (kms, server, api):
        signed = {"command": "listZones", "response": "json", "apiKey": api.apikey}
        signed["signature"] = sign(signed, api.secret)
        http = requests.Session()
        login = http.post(server.url, data={"command": "login", "username": "admin", "password": kms.admin_password,
                                            "domain": "/", "response": "json"}, timeout=60)
        if login.status_code != 200:
            raise BenchError(f"login: {login.status_code} {login.text[:500]}")
        sessionkey = login.json()["loginresponse"]["sessionkey"]
        cookies = "; ".join(f"{c.name}={c.value}" for c in http.cookies)
        if "JSESSIONID=" not in cookies or "sessionkey=" not in cookies:
            raise BenchError(f"login set no JSESSIONID/sessionkey cookies: {login.headers}")
        targets = [
            Target("floor", floor.url),
            Target("signed listZones", requests.Request("GET", server.url, params=signed).prepare().url),
            Target("session listZones", f"{server.url}?command=listZones&response=json"
                   f"&sessionkey={quote(sessionkey, safe='')}", {"Cookie": cookies}),
        ]
        for target in targets:
            verify(target)
        print(f"\n== {backend}: warm-up", flush=True)
        for target in targets:
            checked(target, load(target, args.connections, WARMUP_SECONDS))
        loads: dict[str, list[Load]] = {t.name: [] for t in targets}
        for rnd in range(1, args.rounds + 1):
            for target in targets:
                result = checked(target, load(target, args.connections, args.seconds))
                loads[target.name].append(result)
                print(f"{backend} round {rnd}: {target.name:<18} {result.rate:9.1f} req/s  p50 {result.p50:8.2f} ms"
                      f"  p99 {result.p99:8.2f} ms  ({result.requests} requests)", flush=True)
        floor_rates = [x.rate for x in loads["floor"]]
        rows = [Row(t.name, "req/s", statistics.median(x.rate for x in loads[t.name]),
                    statistics.median(x.p50 for x in loads[t.name]), statistics.median(x.p99 for x in loads[t.name]),
                    statistics.median(x.rate / f for x, f in zip(loads[t.name], floor_rates)))
                for t in targets]
        if not args.skip_create:
            rows.append(create_row(api, providers, args, backend))
    header = (f"{backend} ({describe(base_url)}): gunicorn gthread, {args.workers} workers x {args.threads} threads; "
              f"{load_name(args)} -c{args.connections}, {args.seconds:g} s per row x {args.rounds} round(s); "
              + ("" if args.skip_create else f"createVolume: {args.clients} clients, {args.volumes} volumes, "
                 f"provider {args.provider}; ")
              + f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    return Table(backend, rows, header)


def create_row(api: vb.Api, providers: list[str], args: argparse.Namespace, backend: str) -> Row:
    zone, offering, profiles = vb.prepare(api, providers)
    api.call("updateConfiguration", name="storage.volume.images", value="false")
    key = api.call("createKMSKey", name=f"bench-api-{args.provider}", zoneid=zone,
                   hsmprofileid=profiles[args.provider])["kmskey"]["id"]
    params = {"zoneid": zone, "diskofferingid": offering, "kmskeyid": key}
    warm = create_volumes(api, params, args.clients, args.clients)  # processes, sessions, caches
    if warm.errors:
        raise BenchError(f"createVolume fails: {warm.errors[0]}")
    result = create_volumes(api, params, args.volumes, args.clients)
    for error in result.errors[:3]:
        print(f"createVolume: {error}", file=sys.stderr)
    print(f"{backend}: createVolume + poll: {result.volumes} volumes in {result.seconds:.2f} s = "
          f"{result.rate:.1f}/s  p50 {result.p50:.1f} ms  p99 {result.p99:.1f} ms"
          f"{f'  ({len(result.errors)} errors)' if result.errors else ''}", flush=True)
    return Row("createVolume + poll", "vol/s", result.rate, result.p50, result.p99, None,
               f"{len(result.errors)} errors" if result.errors else "")


def checked(target: Target, result: Load) -> Load:
    if result.errors or not result.requests:
        raise BenchError(f"{target.name} ({target.url}): {result.errors or 'no request answered'}; "
                         "a benchmark of errors measures nothing")
    return result


def describe(url: str) -> str:
    """The database server, without a password."""
    if url.startswith("sqlite"):
        return "file in the temporary directory"
    from sqlalchemy.engine import make_url  # noqa: PLC0415
    return make_url(url).render_as_string(hide_password=True)


def load_name(args: argparse.Namespace) -> str:
    return "wrk -t2" if args.load == "wrk" else "Python load generator"


# ------------------------------------------------------------------ output
def print_table(table: Table) -> None:
    print()
    print(table.header)
    print(f"{'row':<22} {'rate':>10} {'unit':<6} {'p50 ms':>9} {'p99 ms':>9} {'x floor':>8}")
    print("-" * 69)
    for r in table.rows:
        ratio = f"{r.ratio:8.3f}" if r.ratio is not None else f"{'-':>8}"
        print(f"{r.name:<22} {r.rate:>10.1f} {r.unit:<6} {r.p50:>9.2f} {r.p99:>9.2f} {ratio}"
              + (f"  {r.note}" if r.note else ""))
    by_name = {r.name: r for r in table.rows}
    for name, label in (("signed listZones", "signed list"), ("session listZones", "session list")):
        r = by_name[name]
        verdict = "PASS" if r.ratio >= LIST_RATIO_TARGET else "FAIL"
        print(f"{label} >= {LIST_RATIO_TARGET:g} of floor: {verdict} ({r.ratio:.3f})")
    create = by_name.get("createVolume + poll")
    if create is not None:
        verdict = "PASS" if create.rate >= CREATE_TARGET and not create.note else "FAIL"
        print(f"createVolume >= {CREATE_TARGET:.0f}/s (MariaDB target): {verdict} ({create.rate:.1f}/s on "
              f"{table.backend}{'; ' + create.note if create.note else ''})")


def _terminate(signum, frame) -> None:  # noqa: ANN001
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db-url", action="append", default=None,
                        help="database server URL (no database name), or sqlite:// (default); repeatable")
    parser.add_argument("--both", action="store_true",
                        help=f"SQLite, then MariaDB ({MARIADB_URL} unless --db-url names a server)")
    parser.add_argument("--seconds", type=int, default=5, help="seconds per load row per round (default 5)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of floor, signed, session (default 2)")
    parser.add_argument("--workers", type=int, default=2, help="server processes, both servers (default 2)")
    parser.add_argument("--threads", type=int, default=8, help="threads per server process (default 8)")
    parser.add_argument("--connections", type=int, default=16, help="keep-alive connections of the load (default 16)")
    parser.add_argument("--clients", type=int, default=16, help="client processes of the create row (default 16)")
    parser.add_argument("--volumes", type=int, default=1000, help="volumes of the create row (default 1000)")
    parser.add_argument("--skip-create", action="store_true", help="no createVolume row")
    parser.add_argument("--provider", choices=("database", "pkcs11"), default="database",
                        help="KMS provider of the create row (default database; pkcs11: SoftHSM2)")
    parser.add_argument("--load", choices=("auto", "wrk", "python"), default="auto",
                        help="load generator of the list rows (default: wrk if installed, else Python)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (server logs)")
    args = parser.parse_args(argv)

    urls = args.db_url or []
    if args.both:
        urls = ["sqlite://"] + ([u for u in urls if not u.startswith("sqlite")] or [MARIADB_URL])
    urls = urls or ["sqlite://"]
    if args.load == "auto":
        args.load = "wrk" if shutil.which("wrk") else "python"
        if args.load == "python":
            print("wrk is not installed (apt-get install -y wrk): using the Python load generator", file=sys.stderr)
    elif args.load == "wrk" and not shutil.which("wrk"):
        parser.error("wrk is not installed (apt-get install -y wrk)")
    if args.provider == "pkcs11" and not (Path(vb.MODULE).exists() and shutil.which("softhsm2-util")):
        parser.error(f"SoftHSM2 is not installed ({vb.MODULE}, softhsm2-util)")
    load = wrk_load if args.load == "wrk" else python_load

    signal.signal(signal.SIGTERM, _terminate)
    tmp = Path(tempfile.mkdtemp(prefix="kms-apibench-"))
    floor = None
    tables: list[Table] = []
    status = 0
    try:
        floor = FloorServer(tmp, args.workers, args.threads).start()
        for i, url in enumerate(urls):
            db_tmp = tmp / f"db{i}"
            db_tmp.mkdir()
            tables.append(bench_database(url, db_tmp, floor, args, load))
    except BenchError as exc:
        print(f"\nERROR: {exc}", file=sys.stderr)
        status = 1
    except KeyboardInterrupt:
        print("\ninterrupted: cleaning up", file=sys.stderr)
        status = 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # let the clean-up finish
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if floor is not None:
            floor.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    for table in tables:
        print_table(table)
    if args.keep:
        print(f"\nkept {tmp}")
    return status


if __name__ == "__main__":
    sys.exit(main())
