"""Races between deleting and creating: a volume deleted while its createVolume job waits or runs,
and a KMS key deleted while a DEK is wrapped with it (or a volume made with it).

Real concurrency throughout, with the interleaving forced rather than hoped for:

* The volume tests run the real application in this process with its job workers off, behind a
  real HTTP server; jobs run when the test runs them (``JobWorker.claim_next``/``run``), so a job
  is still queued, for certain, when the volume is deleted.
* Where a transaction must be caught mid-way (MariaDB only: SQLite runs one writer at a time, so
  these interleavings cannot happen there), the test holds a row lock on a connection of its own,
  and lets go once InnoDB shows the other transaction waiting for it.

The invariant of the key tests: afterwards either the key is deleted and nothing live references
it, or the delete was refused ("still reference") and the DEK opens.
"""
from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from typing import Any, Callable

import pytest
from sqlalchemy import func, select, text
from werkzeug.serving import make_server

from cloudstack_kms import create_app
from cloudstack_kms.errors import ApiError
from cloudstack_kms.config import Settings
from cloudstack_kms.db import Database
from cloudstack_kms.jobs.worker import JobWorker
from cloudstack_kms.models import Account, DataCenter, User
from cloudstack_kms.models.kms import HsmProfile, KmsKey, WrappedKey
from cloudstack_kms.models.volume import DiskOffering, Volume
from cloudstack_kms.providers.base import zero
from cloudstack_kms.providers.context import ProviderContext
from cloudstack_kms.security.masterkey import MasterKey
from cloudstack_kms.services import volumes
from cloudstack_kms.services.kms import envelope, keys
from cloudstack_kms.services.kms.runtime import KmsRuntime
from cloudstack_kms.storage import qemu
from tests.support.client import Client
from tests.support.dbtools import query
from tests.support.kmsrig import wait_until
from tests.support.tenants import unique
from tests.support.volumes import VolumeStore

DEFAULT_PROFILE = "HSM Database Provider"
needs_qemu = pytest.mark.skipif(qemu.available() is not None, reason=qemu.available() or "")


def mysql_only(backend: str) -> None:
    if backend != "mysql":
        pytest.skip("this interleaving needs row locks (MariaDB/MySQL, KMS_TEST_MYSQL_URL); SQLite runs one "
                    "writer at a time, so it cannot happen there")


def lock_waits(db: Database) -> int:
    """Transactions of this test database now waiting for a row lock (MariaDB)."""
    with db.engine.connect() as conn:
        return conn.execute(text(
            "SELECT COUNT(*) FROM information_schema.INNODB_TRX t JOIN information_schema.PROCESSLIST p "
            "ON p.ID = t.trx_mysql_thread_id WHERE t.trx_state = 'LOCK WAIT' AND p.DB = DATABASE()")).scalar()


def waiting(db: Database, connection: dict) -> bool:
    """Whether the transaction of the connection recorded in ``connection["id"]`` waits for a row lock."""
    if "id" not in connection:
        return False
    with db.engine.connect() as conn:
        return bool(conn.execute(text("SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE "
                                      "trx_mysql_thread_id = :i AND trx_state = 'LOCK WAIT'"),
                                 {"i": connection["id"]}).scalar())


def record_connection(s, connection: dict | None) -> None:  # noqa: ANN001
    if connection is not None:
        connection["id"] = s.execute(text("SELECT CONNECTION_ID()")).scalar()


class Background(threading.Thread):
    """Runs ``fn`` in a thread, keeping its result or its exception."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.fn, self.result, self.error = fn, None, None
        self.start()

    def run(self) -> None:
        try:
            self.result = self.fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            self.error = exc

    def outcome(self, timeout: float = 60) -> Any:
        self.join(timeout)
        assert not self.is_alive(), "the thread did not finish"
        if self.error is not None:
            raise self.error
        return self.result


# ------------------------------------------------------------------ a server whose jobs wait for the test
@dataclass
class Paused:
    kms: Any
    state: Any
    root: Client
    zone: str
    offering: str
    profile: str
    store: VolumeStore

    @property
    def db(self) -> Database:
        return self.state.db

    def claim(self) -> int:
        job_id = JobWorker(self.state, threads=0).claim_next()
        assert job_id is not None, "no queued job"
        return job_id

    def run(self, job_id: int) -> None:
        JobWorker(self.state, threads=0).run(job_id)

    def run_queued(self) -> None:
        while (job_id := JobWorker(self.state, threads=0).claim_next()) is not None:
            self.run(job_id)

    def job(self, jobid: str) -> dict:
        return self.root.ok("queryAsyncJobResult", jobid=jobid)

    def new_key(self) -> dict:
        return self.root.ok("createKMSKey", name=unique("key"), zoneid=self.zone, hsmprofileid=self.profile)["kmskey"]

    def delete_key(self, key_id: str) -> dict:
        jobid = self.root.ok("deleteKMSKey", id=key_id)["jobid"]
        self.run_queued()
        return self.job(jobid)

    def volume_row(self, volume_id: str) -> dict:
        return self.store.volume_row(volume_id)

    def live_wrapped_keys(self, key_id: str) -> int:
        return query(self.kms, "SELECT COUNT(*) FROM kms_wrapped_key w JOIN kms_keys k ON k.id = w.kms_key_id "
                               "WHERE k.uuid = :k AND w.removed IS NULL", k=key_id)[0][0]


@pytest.fixture(scope="module")
def paused(env_factory):
    kms = env_factory("races")
    app = create_app(Settings(db_url=kms.db_url, data_dir=kms.data_dir, master_key_file=kms.data_dir / "master.key",
                              start_background=False))
    state = app.extensions["cloudstack_kms"]
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    serving = threading.Thread(target=httpd.serve_forever, daemon=True)
    serving.start()
    admin = kms.admin_keys()
    root = Client(f"http://127.0.0.1:{httpd.server_port}/client/api", admin["apikey"], admin["secretkey"])
    root.ok("updateConfiguration", name="storage.luks.iter.time.ms", value="1")
    store = VolumeStore(kms)
    try:
        yield Paused(kms, state, root, zone=root.ok("listZones")["zone"][0]["id"],
                     offering=root.ok("createDiskOffering", name=unique("enc"), disksize=1,
                                      encrypt="true")["diskoffering"]["id"],
                     profile=root.ok("listHSMProfiles", name=DEFAULT_PROFILE)["hsmprofile"][0]["id"], store=store)
    finally:
        httpd.shutdown()
        serving.join(10)
        store.close()
        runtime = state.services.get("kms")
        if runtime is not None:
            runtime.providers.close()
        state.db.dispose()


def assert_volume_gone(paused: Paused, volume_id: str, files_before: set) -> None:
    row = paused.volume_row(volume_id)
    assert row["removed"] is not None and row["state"] == "Expunged", row
    if row["kms_wrapped_key_id"] is not None:
        [(removed,)] = query(paused.kms, "SELECT removed FROM kms_wrapped_key WHERE id = :i",
                             i=row["kms_wrapped_key_id"])
        assert removed is not None, "the deleted volume's wrapped key is still live"
    assert paused.store.files() == files_before, "an image of the deleted volume is left on primary storage"


@needs_qemu
def test_delete_volume_while_its_create_job_is_queued(paused):
    """Before: the job later provisioned the removed volume (Ready, a live wrapped key, an image)
    and the key could never be deleted again. Now the job fails as upstream's does, making nothing."""
    key = paused.new_key()
    files_before = paused.store.files()
    submitted = paused.root.ok("createVolume", name=unique("vol"), zoneid=paused.zone,
                               diskofferingid=paused.offering, kmskeyid=key["id"])
    assert paused.job(submitted["jobid"])["jobstatus"] == 0  # queued: no worker has looked at it
    assert paused.root.ok("deleteVolume", id=submitted["id"]) == {"success": True}

    paused.run_queued()
    job = paused.job(submitted["jobid"])
    assert (job["jobstatus"], job["jobresultcode"]) == (2, 530), job
    assert job["jobresult"] == {"errorcode": 530, "errortext": f"Failed to create a volume: volume "
                                f"{submitted['id']} was deleted before it could be created"}
    assert_volume_gone(paused, submitted["id"], files_before)
    row = paused.volume_row(submitted["id"])
    assert row["kms_wrapped_key_id"] is None and row["path"] is None
    assert paused.live_wrapped_keys(key["id"]) == 0
    deleted = paused.delete_key(key["id"])
    assert deleted["jobstatus"] == 1, deleted
    # and deleting it again is the ordinary "not found"
    assert paused.root.error("deleteVolume", 431, id=submitted["id"])["errortext"].startswith(
        "Unable to execute API command deletevolume due to invalid value. Invalid parameter id")


@needs_qemu
@pytest.mark.mysql
def test_delete_volume_while_its_create_job_runs(paused, backend):
    """The job is caught mid-way (the test holds the key's Active version, which wrapping needs);
    deleteVolume comes then. Before: the delete went through at once and the job, resuming, made the
    removed volume Ready with a live wrapped key and an image. Now the delete waits for the job's
    row lock and then removes everything the job made."""
    mysql_only(backend)
    key = paused.new_key()
    files_before = paused.store.files()
    submitted = paused.root.ok("createVolume", name=unique("vol"), zoneid=paused.zone,
                               diskofferingid=paused.offering, kmskeyid=key["id"])
    job_id = paused.claim()
    with paused.db.engine.connect() as holder:
        holding = holder.begin()
        holder.execute(text("SELECT v.id FROM kms_kek_versions v JOIN kms_keys k ON k.id = v.kms_key_id "
                            "WHERE k.uuid = :k AND v.status = 'Active' FOR UPDATE"), {"k": key["id"]})
        job = Background(lambda: paused.run(job_id))
        wait_until(lambda: lock_waits(paused.db) == 1, timeout=30, what="the job to wait for the key version")
        delete = Background(lambda: paused.root.ok("deleteVolume", id=submitted["id"]))
        # Now: the delete waits for the job's lock on the volume row. Before: it finished at once.
        wait_until(lambda: not delete.is_alive() or lock_waits(paused.db) == 2, timeout=30,
                   what="the delete to finish or to wait")
        holding.rollback()
    job.outcome()
    assert delete.outcome() == {"success": True}
    assert paused.job(submitted["jobid"])["jobstatus"] == 1  # the job finished first; the delete then ran
    assert_volume_gone(paused, submitted["id"], files_before)
    assert paused.live_wrapped_keys(key["id"]) == 0
    assert paused.delete_key(key["id"])["jobstatus"] == 1


# ------------------------------------------------------------------ deleteKMSKey against wrapping
class Services:
    """The service layer on a database of its own, called from threads of this process."""

    def __init__(self, kms) -> None:  # noqa: ANN001
        self.kms = kms
        self.db = Database(kms.db_url)
        self.master_key = MasterKey.load(kms.data_dir / "master.key")
        self.runtime = KmsRuntime.create(ProviderContext(db=self.db, master_key=self.master_key))

    def close(self) -> None:
        self.runtime.providers.close()
        self.db.dispose()

    def new_key(self) -> str:
        with self.db.transaction() as s:
            profile = s.scalars(select(HsmProfile).where(HsmProfile.name == DEFAULT_PROFILE)).one()
            return keys.create_key(s, self.runtime, self.master_key, owner=s.get(Account, 2), name=unique("key"),
                                   description=None, zone=s.scalars(select(DataCenter)).first(), profile=profile,
                                   key_bits=256).uuid

    def key(self, s, key_uuid: str) -> KmsKey:  # noqa: ANN001
        return s.scalars(select(KmsKey).where(KmsKey.uuid == key_uuid)).one()

    def delete_key(self, key_uuid: str, hold: threading.Event | None = None, done: threading.Event | None = None,
                   connection: dict | None = None) -> None:
        """deleteKMSKey's work in one transaction; with ``done``/``hold``: signal, then wait before committing."""
        with self.db.transaction() as s:
            record_connection(s, connection)
            key = self.key(s, key_uuid)
            keys.delete_key(s, self.runtime, self.master_key, key, s.get(User, 2))
            if done is not None:
                done.set()
                assert hold.wait(60)

    def digest(self, wrapped_uuid: str) -> str:
        with self.db.transaction() as s:
            row = s.scalars(select(WrappedKey).where(WrappedKey.uuid == wrapped_uuid)).one()
            dek = envelope.unwrap(s, self.runtime, self.master_key, row)
            try:
                return hashlib.sha256(dek).hexdigest()
            finally:
                zero(dek)

    def facts(self, key_uuid: str) -> dict:
        with self.db.transaction() as s:
            key = self.key(s, key_uuid)
            return {"removed": key.removed,
                    "wrapped": s.scalar(select(func.count()).select_from(WrappedKey).where(
                        WrappedKey.kms_key_id == key.id, WrappedKey.removed.is_(None))),
                    "volumes": s.scalar(select(func.count()).select_from(Volume).where(
                        Volume.kms_key_id == key.id, Volume.removed.is_(None)))}


@pytest.fixture(scope="module")
def services(env_factory, backend):
    if backend != "mysql":
        yield None
        return
    svc = Services(env_factory("keyrace"))
    yield svc
    svc.close()


def wrap_one(svc: Services, key_uuid: str, made: dict) -> None:
    with svc.db.transaction() as s:
        new = envelope.wrap_new_dek(s, svc.runtime, svc.master_key, svc.key(s, key_uuid), 256)
        made["uuid"], made["digest"] = new.wrapped_key.uuid, hashlib.sha256(new.plaintext).hexdigest()
        zero(new.plaintext)
        made["ready"].set()
        assert made["hold"].wait(60)


def allocate_one(svc: Services, key_uuid: str, made: dict) -> None:
    with svc.db.transaction() as s:
        key = svc.key(s, key_uuid)
        volume = volumes.allocate(s, owner=s.get(Account, 2), zone=s.get(DataCenter, key.zone_id),
                                  offering=_encrypting_offering(s), size_gb=None, name=None, key=key)
        made["uuid"] = volume.uuid
        made["ready"].set()
        assert made["hold"].wait(60)


def _encrypting_offering(s) -> DiskOffering:  # noqa: ANN001
    offering = DiskOffering(name=unique("enc"), disk_size=1024 ** 3, encrypt=True)
    s.add(offering)
    s.flush()
    return offering


@pytest.mark.mysql
@pytest.mark.parametrize("use", ["wrap", "allocate"])
def test_delete_key_while_the_key_is_being_used(services, backend, use):
    """A DEK is wrapped (or a volume made) with the key and not yet committed when deleteKMSKey
    runs. Before: the delete counted nothing, destroyed the KEK and removed the key; the DEK
    committed afterwards could never be opened. Now the delete waits, then refuses."""
    mysql_only(backend)
    svc = services
    key_uuid = svc.new_key()
    made: dict = {"ready": threading.Event(), "hold": threading.Event()}
    user = Background(lambda: (wrap_one if use == "wrap" else allocate_one)(svc, key_uuid, made))
    assert made["ready"].wait(30)
    connection: dict = {}
    delete = Background(lambda: svc.delete_key(key_uuid, connection=connection))
    wait_until(lambda: not delete.is_alive() or waiting(svc.db, connection), timeout=30,
               what="the delete to finish or to wait")
    made["hold"].set()
    user.outcome()
    try:
        delete.outcome()
        refused = None
    except ApiError as exc:
        refused = exc
    facts = svc.facts(key_uuid)
    if refused is None:  # deleted: nothing live may use the key
        assert facts["wrapped"] == 0 and facts["volumes"] == 0, (
            f"key deleted while {facts['wrapped']} wrapped key(s) and {facts['volumes']} volume(s) use it")
    assert refused is not None, "the delete should have waited for the user of the key, then refused"
    assert refused.code == 431 and facts["removed"] is None
    if use == "wrap":
        assert refused.text == f"Cannot delete KMS key: {key_uuid}. 1 wrapped key(s) still reference this key"
        assert svc.digest(made["uuid"]) == made["digest"]
    else:
        assert refused.text == f"Cannot delete KMS key: {key_uuid}. There are Volumes which still reference this key"


@pytest.mark.mysql
@pytest.mark.parametrize("use", ["wrap", "allocate"])
def test_use_of_a_key_being_deleted_fails_cleanly(services, backend, use):
    """The other order: deleteKMSKey has done its work and not committed when a DEK is wrapped (or a
    volume made) with the key, read while it was still live. The user waits for the delete, then
    finds the key gone (431), and nothing is left referencing the deleted key."""
    mysql_only(backend)
    svc = services
    key_uuid = svc.new_key()
    deleted, hold = threading.Event(), threading.Event()
    loaded, go = threading.Event(), threading.Event()
    connection: dict = {}

    def use_key() -> None:
        with svc.db.transaction() as s:
            record_connection(s, connection)
            key = svc.key(s, key_uuid)  # live when read
            loaded.set()
            assert go.wait(60)
            if use == "wrap":
                envelope.wrap_new_dek(s, svc.runtime, svc.master_key, key, 256)
            else:
                volumes.allocate(s, owner=s.get(Account, 2), zone=s.get(DataCenter, key.zone_id),
                                 offering=_encrypting_offering(s), size_gb=None, name=None, key=key)

    user = Background(use_key)
    assert loaded.wait(30)
    delete = Background(lambda: svc.delete_key(key_uuid, hold=hold, done=deleted))
    assert deleted.wait(30)
    go.set()
    wait_until(lambda: not user.is_alive() or waiting(svc.db, connection), timeout=30,
               what="the user of the key to finish or to wait")
    hold.set()
    delete.outcome()
    with pytest.raises(ApiError) as failure:  # before, allocate went through: a volume on a deleted key
        user.outcome()
    assert (failure.value.code, failure.value.text) == (431, f"KMS key not found: {key_uuid}")
    facts = svc.facts(key_uuid)
    assert facts["removed"] is not None and facts["wrapped"] == 0 and facts["volumes"] == 0, facts
