"""createVolume throughput through the real HTTP API, KMS volumes with both providers.

    python bench/volumes.py --db-url mysql+mysqldb://root@127.0.0.1:3306 [--count N] [--image-count M]
                            [--workers W] [--concurrency C] [--poll SECONDS] [--keep]

Everything is private to the run: a fresh database on the given server (dropped at the end; with
a ``sqlite://`` URL a file in a temporary directory), a data directory with the master key and the
primary storage, and a SoftHSM2 configuration and token (``SOFTHSM2_CONF`` is set in the
environment of the server only). A real server (``cloudstack-kms serve --workers W``) is started;
volumes are created by ``C`` client threads, each with its own signed HTTP session, each doing
``createVolume`` and then polling ``queryAsyncJobResult`` until its job is done.

Rows, for the ``database`` and the ``pkcs11`` provider:

* ``images``: ``storage.volume.images=true`` with a small LUKS iter-time: DEK generate + wrap +
  insert + ``qemu-img create`` of a LUKS qcow2 (``--image-count`` volumes);
* ``metadata``: ``storage.volume.images=false``: DEK generate + wrap + insert (``--count`` volumes).

volumes/s is the number of volumes divided by the time from the first submission until the last
job is done. The table also shows the polls per volume and the CPU the server processes (their
qemu-img children included) and this client spent per volume: on a host shared with other load,
CPU per volume is the steadier number. The target is metadata-only >= 200 volumes/s; the script prints PASS or FAIL and exits
0 either way: it measures, it does not gate.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from tests.support.client import sign  # noqa: E402
from tests.support.server import KmsEnv, ServerProcess  # noqa: E402

MODULE = os.environ.get("KMS_TEST_PKCS11_MODULE", "/usr/lib/softhsm/libsofthsm2.so")
TOKEN_LABEL = "kms-volume-bench"
USER_PIN = "1234"
SO_PIN = "5678"
TARGET = 200.0
ITER_TIME_MS = "1"


# ------------------------------------------------------------------ a signed client per thread
class Api:
    def __init__(self, url: str, apikey: str, secret: str) -> None:
        self.url, self.apikey, self.secret = url, apikey, secret
        self._local = threading.local()

    @property
    def http(self) -> requests.Session:
        session = getattr(self._local, "http", None)
        if session is None:
            session = self._local.http = requests.Session()
        return session

    def call(self, command: str, **params: Any) -> dict[str, Any]:
        query = {"command": command, "response": "json", **{k: str(v) for k, v in params.items() if v is not None},
                 "apiKey": self.apikey}
        query["signature"] = sign(query, self.secret)
        resp = self.http.get(self.url, params=query, timeout=120)
        body = resp.json()
        inner = next(iter(body.values()))
        if resp.status_code != 200:
            raise RuntimeError(f"{command} -> {resp.status_code}: {inner.get('errortext')}")
        return inner

    def wait(self, jobid: str, interval: float, timeout: float = 600.0) -> tuple[dict[str, Any], int]:
        """The finished job and the number of polls it took. Polls are spaced ``interval`` apart (after
        a first one at ``interval / 5``): each poll is a signed request costing the server as much
        CPU as a short job step, so polling fast would measure the polling."""
        deadline = time.monotonic() + timeout
        delay = interval / 5
        polls = 0
        while True:
            time.sleep(delay)
            job = self.call("queryAsyncJobResult", jobid=jobid)
            polls += 1
            if job["jobstatus"] != 0:
                return job, polls
            if time.monotonic() > deadline:
                raise RuntimeError(f"job {jobid} still running after {timeout}s")
            delay = interval


# ------------------------------------------------------------------ set-up
def setup_softhsm(root: Path) -> dict[str, str]:
    tokens = root / "tokens"
    tokens.mkdir(parents=True)
    conf = root / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
                    "slots.removable = false\n")
    env = {**os.environ, "SOFTHSM2_CONF": str(conf)}
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", TOKEN_LABEL, "--pin", USER_PIN,
                    "--so-pin", SO_PIN], check=True, capture_output=True, env=env)
    return {"SOFTHSM2_CONF": str(conf)}


def make_database(base_url: str, tmp: Path) -> tuple[str, str | None]:
    """A fresh database: (url, name to drop) — or a SQLite file in the temporary directory."""
    if base_url.startswith("sqlite"):
        return f"sqlite:///{tmp / 'kms.db'}", None
    from sqlalchemy import create_engine, text  # noqa: PLC0415
    name = f"kmsbench_{secrets.token_hex(4)}"
    engine = create_engine(base_url.rstrip("/") + "/")
    with engine.begin() as conn:
        conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"))
    engine.dispose()
    return base_url.rstrip("/") + f"/{name}?charset=utf8mb4", name


def drop_database(base_url: str, name: str) -> None:
    from sqlalchemy import create_engine, text  # noqa: PLC0415
    engine = create_engine(base_url.rstrip("/") + "/")
    with engine.begin() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
    engine.dispose()


@contextmanager
def bench_server(base_url: str, tmp: Path, workers: int, providers: list[str],
                 extra_args: tuple[str, ...] = ()) -> Iterator[tuple[KmsEnv, ServerProcess, Api]]:
    """A fresh database under ``base_url``, a data directory in ``tmp`` (and a SoftHSM2 token if
    ``pkcs11`` is among ``providers``), ``db init`` and a running server: (env, server, admin API).
    The server is stopped and the database dropped on exit; ``tmp`` is the caller's to remove."""
    db_name = None
    server = None
    try:
        hsm_env = setup_softhsm(tmp / "softhsm") if "pkcs11" in providers else {}
        db_url, db_name = make_database(base_url, tmp)
        kms = KmsEnv(db_url=db_url, data_dir=tmp / "data", extra_env=hsm_env)
        kms.init()
        keys = kms.admin_keys()
        server = ServerProcess(kms, workers=workers, log_path=tmp / "server.log",
                               extra_args=extra_args).start(timeout=60)
        yield kms, server, Api(server.url, keys["apikey"], keys["secretkey"])
    finally:
        if server is not None:
            server.stop()
        if db_name:
            drop_database(base_url, db_name)


def prepare(api: Api, providers: list[str]) -> tuple[str, str, dict[str, str]]:
    """The zone, an encrypted disk offering and an HSM profile id per provider (``database``: the
    built-in one; ``pkcs11``: a new profile on the SoftHSM2 token); LUKS iter-time set small."""
    zone = api.call("listZones")["zone"][0]["id"]
    offering = api.call("createDiskOffering", name="bench-encrypted", disksize=1, encrypt="true")["diskoffering"]["id"]
    api.call("updateConfiguration", name="storage.luks.iter.time.ms", value=ITER_TIME_MS)
    profiles = {"database": api.call("listHSMProfiles", name="HSM Database Provider")["hsmprofile"][0]["id"]}
    if "pkcs11" in providers:
        profiles["pkcs11"] = api.call("createHSMProfile", name="bench-pkcs11", **{
            "details[0].library": MODULE, "details[0].token_label": TOKEN_LABEL,
            "details[0].pin": USER_PIN})["hsmprofile"]["id"]
    return zone, offering, profiles


# ------------------------------------------------------------------ measuring
def server_cpu(pid: int) -> float:
    """CPU seconds used so far by a process and its children (the gunicorn master and its workers),
    including the finished children of those (qemu-img runs)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry) == pid or int(fields[1]) == pid:
            total += sum(int(f) for f in fields[11:15]) / tick
    return total


@dataclass
class Row:
    mode: str
    provider: str
    count: int
    seconds: float
    errors: list[str]
    polls: int
    server_cpu: float
    client_cpu: float

    @property
    def rate(self) -> float:
        return self.count / self.seconds


def create_volumes(api: Api, count: int, concurrency: int, params: dict[str, str],
                   interval: float) -> tuple[float, list[str], int]:
    """Create ``count`` volumes with ``concurrency`` threads; (seconds, errors, polls)."""
    remaining = [count]
    polls = [0]
    lock = threading.Lock()
    errors: list[str] = []

    def worker() -> None:
        while True:
            with lock:
                if remaining[0] <= 0:
                    return
                remaining[0] -= 1
            try:
                job, n = api.wait(api.call("createVolume", **params)["jobid"], interval)
                with lock:
                    polls[0] += n
                if job["jobstatus"] != 1:
                    errors.append(json.dumps(job.get("jobresult")))
            except Exception as exc:  # noqa: BLE001 - counted and shown
                errors.append(repr(exc))

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start, errors, polls[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db-url", required=True, help="database server URL (no database name), or sqlite://")
    parser.add_argument("--count", type=int, default=1000, help="volumes per metadata-only row (default 1000)")
    parser.add_argument("--image-count", type=int, default=8, help="volumes per images row (default 8)")
    parser.add_argument("--workers", type=int, default=2, help="server processes (default 2)")
    parser.add_argument("--concurrency", type=int, default=32, help="client threads (default 32)")
    parser.add_argument("--poll", type=float, default=0.25, help="seconds between job polls (default 0.25)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (server log)")
    args = parser.parse_args(argv)

    providers = ["database"]
    if Path(MODULE).exists() and shutil.which("softhsm2-util"):
        providers.append("pkcs11")
    else:
        print(f"SoftHSM2 is not installed ({MODULE}, softhsm2-util): pkcs11 rows skipped", file=sys.stderr)

    tmp = Path(tempfile.mkdtemp(prefix="kms-volbench-"))
    try:
        with bench_server(args.db_url, tmp, args.workers, providers) as (_kms, server, api):
            rows = run(api, server, providers, args)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    backend = "SQLite" if args.db_url.startswith("sqlite") else "MariaDB/MySQL"
    print()
    print(f"createVolume through HTTP on {backend}: {args.workers} server process(es), {args.concurrency} client "
          f"threads, submit -> job done (polls {args.poll:g} s apart); LUKS iter-time {ITER_TIME_MS} ms; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(f"{'mode':<10} {'provider':<9} {'volumes':>8} {'seconds':>8} {'volumes/s':>10} {'errors':>7} "
          f"{'polls/vol':>9} {'server CPU ms/vol':>18} {'client CPU ms/vol':>18}")
    print("-" * 105)
    for r in rows:
        print(f"{r.mode:<10} {r.provider:<9} {r.count:>8} {r.seconds:>8.2f} {r.rate:>10.1f} {len(r.errors):>7} "
              f"{r.polls / r.count:>9.1f} {1000 * r.server_cpu / r.count:>18.1f} {1000 * r.client_cpu / r.count:>18.1f}")
    print()
    metadata = [r.rate for r in rows if r.mode == "metadata"]
    worst = min(metadata) if metadata else 0.0
    failed = any(r.errors for r in rows)
    verdict = "PASS" if worst >= TARGET and not failed else "FAIL"
    print(f"{verdict}: metadata-only createVolume at {worst:.1f} volumes/s at worst (target >= {TARGET:.0f}/s)"
          + ("; some volumes failed" if failed else ""))
    return 0


def run(api: Api, server: ServerProcess, providers: list[str], args: argparse.Namespace) -> list[Row]:
    zone, offering, profiles = prepare(api, providers)
    rows = []
    for mode, images, count in (("images", "true", args.image_count), ("metadata", "false", args.count)):
        if count <= 0:
            continue
        api.call("updateConfiguration", name="storage.volume.images", value=images)
        for provider in providers:
            key = api.call("createKMSKey", name=f"bench-{mode}-{provider}", zoneid=zone,
                           hsmprofileid=profiles[provider])["kmskey"]["id"]
            params = {"zoneid": zone, "diskofferingid": offering, "kmskeyid": key}
            warm = min(args.concurrency, max(2, count // 20))
            create_volumes(api, warm, args.concurrency, params, args.poll)  # connections, sessions, caches
            cpu0, client0 = server_cpu(server.proc.pid), time.process_time()
            seconds, errors, polls = create_volumes(api, count, args.concurrency, params, args.poll)
            row = Row(mode, provider, count, seconds, errors, polls, server_cpu(server.proc.pid) - cpu0,
                      time.process_time() - client0)
            for error in errors[:3]:
                print(f"{mode}/{provider}: {error}", file=sys.stderr)
            rows.append(row)
            print(f"{mode:<10} {provider:<10} {count:>6} volumes in {seconds:7.2f} s = {row.rate:7.1f}/s"
                  f"{f'  ({len(errors)} errors)' if errors else ''}", flush=True)
    return rows


if __name__ == "__main__":
    sys.exit(main())
