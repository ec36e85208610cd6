"""The rewrap worker shared by several servers through leases, and the lease-row cluster lock.

On a real database of the backend under test (SQLite file, or MariaDB with
``KMS_TEST_MYSQL_URL``), with KMS keys, wrapped keys and a rotation made through the service
layer (database provider: the work is the database's, as in the issue):

* three worker *processes* with distinct owners drain one Previous version together: each moves
  some keys, the ``KMS.KEY.WRAP`` counts add up to exactly the number of keys, every key unwraps
  to its DEK, and the version is archived and its KEK deleted once (one event each);
* the range leased by a process killed with SIGKILL stays untouched until the lease expires,
  then another worker takes it over;
* a worker that stalls past its lease while a chunk is in flight, and writes after another one
  took its range over, moves (and counts) nothing twice;
* a write conflict (1213, as Galera's certification failure) on a chunk is run again without a
  word in the log; a lost claim is just "another server's range";
* ``cluster_lock`` excludes across processes and threads, holds while its holder renews, and is
  taken over after a SIGKILLed holder's lease runs out.

This module is also the worker process the tests start: ``python -m tests.test_rewrap_leases
drain|claim|lock <json>``.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import func, select, update

from tests.support.kmsrig import Services, wait_until

REPO = Path(__file__).resolve().parent.parent
PROCESS_KEYS = 3_000
PROCESS_BATCH = 60
DEAD_LEASE_SEC = 5

pytestmark = pytest.mark.mysql


# ------------------------------------------------------------------ set-up through the service layer
@dataclass
class Drain:
    """A key with wrapped keys on version 1, rotated to version 2 (Active); nothing rewrapped yet."""

    services: Services
    db_url: str
    data_dir: Path
    key_uuid: str
    key_id: int
    old_version_id: int
    old_label: str
    made: dict[str, str]  # wrapped key uuid -> sha256 of its DEK

    def state(self, owner: int) -> SimpleNamespace:
        s = self.services
        return SimpleNamespace(db=s.db, master_key=s.master_key, services={"kms": s.runtime}, msid=owner)

    def on_old(self) -> int:
        from cloudstack_kms.models.kms import WrappedKey
        return self.services.count(WrappedKey, WrappedKey.kek_version_id == self.old_version_id,
                                   WrappedKey.removed.is_(None))

    def version(self) -> Any:
        from cloudstack_kms.models.kms import KekVersion
        with self.services.db.transaction(readonly=True) as s:
            v = s.get(KekVersion, self.old_version_id)
            return SimpleNamespace(status=v.status, removed=v.removed)

    def events(self, event_type: str) -> list[tuple[str, str | None]]:
        from cloudstack_kms.models import Event
        with self.services.db.transaction(readonly=True) as s:
            return [(d, p) for d, p in s.execute(select(Event.description, Event.parameters).where(
                Event.type == event_type, Event.resource_type == "KmsKey", Event.resource_id == self.key_id))]

    def wrap_count(self) -> int:
        return sum(int(p.split("=", 1)[1]) for _, p in self.events("KMS.KEY.WRAP"))

    def assert_drained_once(self) -> None:
        """Nothing left on version 1, each key counted once, one archive and one KEK deletion,
        every DEK intact."""
        from cloudstack_kms.models.kms import ARCHIVED, DatabaseKekObject
        assert self.on_old() == 0
        version = self.version()
        assert version.status == ARCHIVED and version.removed is not None
        assert self.wrap_count() == len(self.made)
        deletes = [d for d, _ in self.events("KMS.KEY.DELETE")]
        assert len(deletes) == 1 and deletes[0].startswith(f"Deleted archived KEK {self.old_label}"), deletes
        assert self.services.count(DatabaseKekObject, DatabaseKekObject.label == self.old_label) == 0
        assert self.services.unwrap_digests(self.key_uuid) == self.made


def set_batch(services: Services, batch: int) -> None:
    from cloudstack_kms.models import Configuration
    with services.db.transaction() as s:
        s.execute(update(Configuration).where(Configuration.name == "kms.rewrap.batch.size").values(value=str(batch)))


def make_drain(env_factory, label: str, keys: int, batch: int) -> Drain:
    from cloudstack_kms.models import Account, DataCenter, User
    from cloudstack_kms.models.kms import HsmProfile, KekVersion
    from cloudstack_kms.services.kms import keys as kms_keys
    from cloudstack_kms.services.kms import rotation

    kms = env_factory(label)
    services = Services(kms)
    set_batch(services, batch)
    with services.db.transaction() as s:
        profile = s.scalars(select(HsmProfile).where(HsmProfile.protocol == "database").order_by(HsmProfile.id)).first()
        zone = s.scalars(select(DataCenter).order_by(DataCenter.id)).first()
        key = kms_keys.create_key(s, services.runtime, services.master_key, owner=s.get(Account, 2), name=label,
                                  description=None, zone=zone, profile=profile, key_bits=256)
        key_uuid, key_id = key.uuid, key.id
    made = services.add_wrapped_keys(key_uuid, keys)
    with services.db.transaction() as s:
        old = s.scalars(select(KekVersion).where(KekVersion.kms_key_id == key_id)).one()
        old_id, old_label = old.id, old.kek_label
        rotation.rotate(s, services.runtime, services.master_key, s.get(type(key), key_id), s.get(Account, 2),
                        s.get(User, 2), None, None)
    return Drain(services, kms.db_url, kms.data_dir, key_uuid, key_id, old_id, old_label, made)


@pytest.fixture()
def drains():
    made: list[Drain] = []
    yield made
    for d in made:
        d.services.close()


def spawn(mode: str, **args: Any) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.test_rewrap_leases", mode, json.dumps(args)], cwd=REPO,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def read_line(proc: subprocess.Popen, timeout: float = 60) -> str:
    """The next line the process prints (it must print one within ``timeout``)."""
    box: list[str] = []
    t = threading.Thread(target=lambda: box.append(proc.stdout.readline()), daemon=True)
    t.start()
    t.join(timeout)
    assert box and box[0], f"no line from the worker process; stderr:\n{proc.stderr.read() if not t.is_alive() else ''}"
    return box[0].strip()


def kill9(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def finish(proc: subprocess.Popen) -> str:
    """Reap the process (killed if still running) and close its pipes; returns what it wrote to stderr."""
    if proc.poll() is None:
        kill9(proc)
    return proc.communicate(timeout=30)[1]


# ------------------------------------------------------------------ several processes drain together
def test_three_processes_drain_one_version_together(env_factory, drains):
    d = make_drain(env_factory, "leases3", PROCESS_KEYS, PROCESS_BATCH)
    drains.append(d)
    workers = [spawn("drain", db_url=d.db_url, data_dir=str(d.data_dir), owner=1000 + i,
                     version_id=d.old_version_id) for i in range(3)]
    try:
        for w in workers:
            assert read_line(w) == "ready"
        for w in workers:  # all start at once
            w.stdin.write("go\n")
            w.stdin.flush()
        reports = [json.loads(read_line(w, timeout=300)) for w in workers]
        for w in workers:
            assert w.wait(timeout=30) == 0
    finally:
        logs = [finish(w) for w in workers]
    if not d.db_url.startswith("sqlite"):
        # SQLite has one writer: a process that takes it first may drain everything before the
        # others get a claim in, on a busy host. Sharing the work is a property of MySQL/MariaDB.
        assert all(r["rewrapped"] > 0 for r in reports), f"a process did no work: {reports}"
    assert sum(r["rewrapped"] for r in reports) == PROCESS_KEYS, reports
    assert sum(r["failed"] for r in reports) == 0
    assert sum(r["archived"] for r in reports) == 1, reports
    d.assert_drained_once()
    for log in logs:
        assert "Traceback" not in log and "ERROR" not in log, log[-3000:]


# ------------------------------------------------------------------ a dead holder's range
def test_range_of_a_killed_process_is_taken_over_when_its_lease_expires(env_factory, drains):
    from cloudstack_kms.models.kms import ARCHIVED, RewrapLease
    from cloudstack_kms.services.kms.rewrap import Rewrapper

    d = make_drain(env_factory, "leasedead", 200, 50)
    drains.append(d)
    holder = spawn("claim", db_url=d.db_url, data_dir=str(d.data_dir), owner=777, version_id=d.old_version_id,
                   batch=50, lease_sec=DEAD_LEASE_SEC)
    try:
        claimed = json.loads(read_line(holder))
    finally:
        finish(holder)  # a server dies holding the range (SIGKILL)
    dead_range = claimed["range"]
    assert claimed["keys"] == 50
    started = time.monotonic()

    survivor = Rewrapper(d.state(888))
    try:
        # Everything but the dead server's range drains; that range stays put while its lease runs.
        while True:
            report = survivor.run_once()
            if report.locked_out:
                break
            assert time.monotonic() - started < DEAD_LEASE_SEC - 0.5, "the drain around the leased range took too long"
        assert d.on_old() == 50 and d.version().status != ARCHIVED
        with d.services.db.transaction(readonly=True) as s:
            lease = s.get(RewrapLease, dead_range)
            assert lease.owner_msid == 777 and lease.first_id <= lease.last_id
        # Once the lease has expired (database clock), the next run takes the range over.
        wait_until(lambda: survivor.run_once().rewrapped == 50, timeout=20, interval=0.2,
                   what="the expired range to be taken over")
        assert time.monotonic() - started >= DEAD_LEASE_SEC - 1
        # That run took the last keys, so it also archived the version and deleted its KEK.
        assert d.version().removed is not None
    finally:
        survivor.close()
    d.assert_drained_once()
    assert d.services.count(RewrapLease, RewrapLease.kek_version_id == d.old_version_id) == 0


def test_a_worker_that_stalls_past_its_lease_moves_nothing_twice(env_factory, drains):
    """A writes its chunk after B took its expired range over and moved the same keys: A's
    conditional update finds them gone, and neither its report nor the events count them."""
    from cloudstack_kms.services.kms import rewrap

    d = make_drain(env_factory, "leasestall", 120, 120)  # one range, one batch
    drains.append(d)
    a, b = rewrap.Rewrapper(d.state(1)), rewrap.Rewrapper(d.state(2))
    a.min_lease_sec = 1.0
    in_write, resume = threading.Event(), threading.Event()
    original = a._write

    def stalled_write(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        in_write.set()
        assert resume.wait(60)
        return original(*args, **kwargs)

    a._write = stalled_write
    reports: list = []
    thread = threading.Thread(target=lambda: reports.append(a.run_once()))
    thread.start()
    try:
        assert in_write.wait(60), "A never reached its write"
        assert b.run_once().rewrapped == 0  # A's lease still runs
        time.sleep(1.5)
        taken = b.run_once()
        assert taken.rewrapped == 120 and d.on_old() == 0
    finally:
        resume.set()
        thread.join(60)
        a.close()
    assert reports and reports[0].rewrapped == 0, reports
    b.run_once()  # A's leftovers settled: the range is empty, the version finished
    b.close()
    assert d.wrap_count() == 120
    d.assert_drained_once()


# ------------------------------------------------------------------ write conflicts
def _conflict() -> Exception:
    from sqlalchemy.exc import OperationalError

    class DriverError(Exception):
        pass

    return OperationalError("UPDATE ...", {}, DriverError(1213, "Deadlock found when trying to get lock; "
                                                               "try restarting transaction"))


def test_a_write_conflict_on_a_chunk_is_run_again_quietly(env_factory, drains, monkeypatch, caplog):
    from cloudstack_kms.services.kms import rewrap

    d = make_drain(env_factory, "leaseconflict", 300, 100)
    drains.append(d)
    real, calls = rewrap.move_rows, []

    def conflicted(session, *args):  # noqa: ANN001, ANN002, ANN202
        moved = real(session, *args)  # applied, then the commit fails as a certification would
        calls.append(moved)
        if len(calls) % 2:
            raise _conflict()
        return moved

    monkeypatch.setattr(rewrap, "move_rows", conflicted)
    worker = rewrap.Rewrapper(d.state(5))
    caplog.set_level(logging.INFO)
    try:
        moved = 0
        while d.version().removed is None:
            moved += worker.run_once().rewrapped
    finally:
        worker.close()
    assert moved == 300 and len(calls) >= 6
    d.assert_drained_once()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


def test_lost_claims_are_no_error(env_factory, drains, monkeypatch):
    from cloudstack_kms.services.kms import leases

    d = make_drain(env_factory, "leaselost", 10, 10)
    drains.append(d)
    ranges = leases.RangeLeases(d.services.db, owner=9)
    assert ranges.plan(d.old_version_id, 10)
    assert not ranges.plan(d.old_version_id, 10)  # planned already: the unique first range refuses a second plan
    (only,) = ranges.ranges(d.old_version_id)
    assert (only.first_id, only.last_id, only.claimable) == (0, leases.MAX_ID, True)

    def conflicting(_session) -> None:  # noqa: ANN001
        raise _conflict()

    assert leases.attempt(d.services.db, conflicting) is None
    other = leases.RangeLeases(d.services.db, owner=10)
    assert ranges.claim(only.id, 30, lambda s: "read") == (True, "read")
    assert other.claim(only.id, 30, lambda s: "read") == (False, None)
    assert not other.ranges(d.old_version_id)[0].claimable


def test_plan_cuts_ranges_of_a_batch_covering_every_id(env_factory, drains):
    from cloudstack_kms.models.kms import WrappedKey
    from cloudstack_kms.services.kms import leases

    d = make_drain(env_factory, "leaseplan", 230, 50)
    drains.append(d)
    planner = leases.RangeLeases(d.services.db, owner=1)
    assert planner.plan(d.old_version_id, 50)
    cut = sorted(planner.ranges(d.old_version_id), key=lambda r: r.first_id)
    assert cut[0].first_id == 0 and cut[-1].last_id == leases.MAX_ID
    assert all(x.last_id + 1 == y.first_id for x, y in zip(cut, cut[1:]))
    with d.services.db.transaction(readonly=True) as s:
        sizes = [s.scalar(select(func.count()).select_from(WrappedKey).where(
            WrappedKey.kek_version_id == d.old_version_id, WrappedKey.id.between(r.first_id, r.last_id)))
            for r in cut]
    assert sizes == [50, 50, 50, 50, 30]


# ------------------------------------------------------------------ the cluster lock
def test_cluster_lock_excludes_across_processes_and_is_taken_over_after_a_kill(env_factory):
    from cloudstack_kms.db import Database
    from cloudstack_kms.services.kms.cluster_lock import cluster_lock

    kms = env_factory("lock")
    db = Database(kms.db_url)
    holder = spawn("lock", db_url=kms.db_url, name="test.lock", lease_sec=2)
    try:
        assert read_line(holder) == "held"
        with cluster_lock(db, "test.lock", wait_sec=0.3) as held:
            assert not held
        time.sleep(3)  # past one lease: the holder's renewals keep it
        with cluster_lock(db, "test.lock", wait_sec=0.3) as held:
            assert not held
        finish(holder)  # SIGKILL
        killed = time.monotonic()
        with cluster_lock(db, "test.lock", wait_sec=10) as held:
            assert held
            waited = time.monotonic() - killed
            # A second holder in this very process is refused too: each acquisition has its own token.
            with cluster_lock(db, "test.lock", wait_sec=0) as second:
                assert not second
        assert waited <= 4, f"took {waited:.1f} s to take over a 2 s lease"
        with cluster_lock(db, "test.lock", wait_sec=0) as again:  # released: free at once
            assert again
    finally:
        finish(holder)
        db.dispose()


def test_cluster_lock_lets_one_thread_in_at_a_time(env_factory):
    from cloudstack_kms.db import Database
    from cloudstack_kms.services.kms.cluster_lock import cluster_lock

    db = Database(env_factory("lockthreads").db_url)
    inside, most, entered = [0], [0], [0]
    guard = threading.Lock()

    def work() -> None:
        for _ in range(5):
            with cluster_lock(db, "test.threads", wait_sec=30) as held:
                assert held
                with guard:
                    inside[0] += 1
                    most[0] = max(most[0], inside[0])
                    entered[0] += 1
                time.sleep(0.01)
                with guard:
                    inside[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(4)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        db.dispose()
    assert entered[0] == 20 and most[0] == 1


# ------------------------------------------------------------------ the worker processes
def _services(args: dict) -> Services:
    from tests.support.server import KmsEnv
    return Services(KmsEnv(db_url=args["db_url"], data_dir=Path(args.get("data_dir", "."))))


def _drain(args: dict) -> None:
    """Run the worker in a loop, from "go" on stdin until the version's KEK is deleted; print the totals."""
    from cloudstack_kms.models.kms import KekVersion
    from cloudstack_kms.services.kms.rewrap import Rewrapper

    services = _services(args)
    worker = Rewrapper(SimpleNamespace(db=services.db, master_key=services.master_key,
                                       services={"kms": services.runtime}), owner=args["owner"])
    print("ready", flush=True)
    sys.stdin.readline()
    totals = {"rewrapped": 0, "failed": 0, "archived": 0, "runs": 0}
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        report = worker.run_once()
        totals["rewrapped"] += report.rewrapped
        totals["failed"] += report.failed
        totals["archived"] += report.archived
        totals["runs"] += 1
        with services.db.transaction(readonly=True) as s:
            if s.get(KekVersion, args["version_id"]).removed is not None:
                break
        if report.locked_out:
            time.sleep(0.01)
    worker.close()
    print(json.dumps(totals), flush=True)


def _claim(args: dict) -> None:
    """Plan the version's ranges, claim the first and count its keys, print that, then hang (to be killed)."""
    from cloudstack_kms.models.kms import WrappedKey
    from cloudstack_kms.services.kms.leases import RangeLeases

    services = _services(args)
    leases = RangeLeases(services.db, args["owner"])
    leases.plan(args["version_id"], args["batch"])
    first = min(leases.ranges(args["version_id"]), key=lambda r: r.first_id)
    claimed, keys = leases.claim(first.id, args["lease_sec"], lambda s: s.scalar(
        select(func.count()).select_from(WrappedKey).where(WrappedKey.kek_version_id == args["version_id"],
                                                           WrappedKey.id.between(first.first_id, first.last_id))))
    assert claimed
    print(json.dumps({"range": first.id, "keys": keys}), flush=True)
    time.sleep(600)


def _lock(args: dict) -> None:
    """Take the lock, say so, and hold it (renewing) until killed."""
    from cloudstack_kms.db import Database
    from cloudstack_kms.services.kms.cluster_lock import cluster_lock

    with cluster_lock(Database(args["db_url"]), args["name"], wait_sec=10, lease_sec=args["lease_sec"]) as held:
        print("held" if held else "refused", flush=True)
        time.sleep(600)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    {"drain": _drain, "claim": _claim, "lock": _lock}[sys.argv[1]](json.loads(sys.argv[2]))
