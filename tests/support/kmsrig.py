"""A private server with KMS keys, encrypted volumes and many wrapped keys, for the rotation,
rewrap-crash and migration tests.

* :class:`Rig` — an initialised database of its own (``env_factory``) and the server
  processes started on it; settings changed with ``updateConfiguration``; volumes made
  through the API (real LUKS images); helpers to read key versions and check volumes.
* :class:`Services` — the server's service layer used from the test process, on the same
  database and master key: bulk wrapped keys through ``envelope.wrap_new_dek``, unwrapping
  through ``envelope.unwrap``, legacy volumes without images.
* :func:`token_key_labels` — the secret keys on a SoftHSM2 token, read by a fresh process
  (a process caches token objects; a fresh one sees what is really on the token).
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from sqlalchemy import func, select

from .client import Client
from .dbtools import query
from .server import KmsEnv, ServerProcess
from .softhsm import MODULE, USER_PIN
from .tenants import unique

#: LUKS key derivation time for test volumes (qemu still benchmarks its PBKDF: ~2 s a volume).
LUKS_ITER_MS = 10
QEMU_CPU_FLAKE = "Unable to get accurate CPU usage"


def digest(secret: bytes | bytearray) -> str:
    return hashlib.sha256(bytes(secret)).hexdigest()


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.1, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def detail_params(details: dict[str, str]) -> dict[str, str]:
    return {f"details[0].{k}": v for k, v in details.items()}


@dataclass
class Rig:
    kms: KmsEnv
    keys: dict[str, str]
    servers: list[ServerProcess] = field(default_factory=list)
    zone: str = ""
    offering: str = ""

    # ------------------------------------------------------------ servers
    @classmethod
    def create(cls, env_factory, label: str, **settings: Any) -> "Rig":
        """A fresh database, one server, the encrypting disk offering, and ``settings``
        (``kms_rewrap_interval_ms=200`` for ``kms.rewrap.interval.ms``)."""
        kms = env_factory(label)
        rig = cls(kms, kms.admin_keys())
        rig.start()
        rig.configure(storage_luks_iter_time_ms=LUKS_ITER_MS, **settings)
        rig.zone = rig.root.ok("listZones")["zone"][0]["id"]
        rig.offering = rig.root.ok("createDiskOffering", name=unique("enc"), disksize=1,
                                   encrypt="true")["diskoffering"]["id"]
        return rig

    def start(self) -> ServerProcess:
        server = ServerProcess(self.kms).start()
        self.servers.append(server)
        return server

    def client(self, server: ServerProcess | None = None) -> Client:
        server = server or self.live()[0]
        return Client(server.url, self.keys["apikey"], self.keys["secretkey"])

    @property
    def root(self) -> Client:
        """The root admin on the first live server."""
        return self.client()

    def live(self) -> list[ServerProcess]:
        live = [s for s in self.servers if s.proc is not None and s.proc.poll() is None]
        assert live, "no server is running"
        return live

    def kill9(self, server: ServerProcess) -> None:
        server.kill9()

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    def logs(self) -> str:
        return "\n".join(s.log() for s in self.servers)

    def configure(self, **settings: Any) -> None:
        """updateConfiguration; names use ``_`` for ``.``."""
        for name, value in settings.items():
            value = str(value).lower() if isinstance(value, bool) else str(value)
            self.root.ok("updateConfiguration", name=name.replace("_", "."), value=value)

    def sql(self, statement: str, **params: Any) -> list[Any]:
        return query(self.kms, statement, **params)

    # ------------------------------------------------------------ KMS objects
    def pkcs11_profile(self, softhsm, token: str, **params: Any) -> dict:
        return self.root.ok("createHSMProfile", name=unique("p11"), **params,
                            **detail_params(softhsm.details(token)))["hsmprofile"]

    def database_profile(self, **params: Any) -> dict:
        return self.root.ok("createHSMProfile", name=unique("db"), protocol="database", **params)["hsmprofile"]

    def default_profile(self) -> dict:
        return self.root.ok("listHSMProfiles", name="HSM Database Provider")["hsmprofile"][0]

    def create_key(self, profile: str, account: dict | None = None, **params: Any) -> dict:
        owner = {"account": account["name"], "domainid": account["domainid"]} if account else {}
        return self.root.ok("createKMSKey", name=unique("key"), zoneid=self.zone, hsmprofileid=profile, **owner,
                            **params)["kmskey"]

    def key(self, key_id: str) -> dict:
        return self.root.ok("listKMSKeys", id=key_id)["kmskey"][0]

    def versions(self, key_id: str) -> dict[int, dict]:
        """The key's KEK versions by number (``versions`` of ``listKMSKeys``, root admins)."""
        return {v["version"]: v for v in self.key(key_id)["versions"]}

    def rotate(self, key_id: str, **params: Any) -> dict:
        """rotateKMSKey, waited for; returns the whole job (check ``jobstatus``)."""
        job = self.root.ok("rotateKMSKey", id=key_id, **params)
        return self.root.wait_job(job["jobid"], timeout=120)

    # ------------------------------------------------------------ volumes
    def create_volumes(self, count: int, account: dict | None = None, key: str | None = None,
                       zone: str | None = None, timeout: float = 900) -> list[dict]:
        """``count`` volumes with real images, created by parallel jobs; returns them (Ready).

        qemu-img 7.2 measures its PBKDF speed with the thread's CPU time and gives up with
        "Unable to get accurate CPU usage" when a busy machine accounts it 0 ms: such a volume
        (a failure of the environment, not of the key handling) is deleted and made again.
        """
        owner = {"account": account["name"], "domainid": account["domainid"]} if account else {}
        root = self.root

        def submit() -> str:
            return root.ok("createVolume", name=unique("vol"), zoneid=zone or self.zone,
                           diskofferingid=self.offering, kmskeyid=key, **owner)["jobid"]

        made: list[dict] = []
        pending = [submit() for _ in range(count)]
        for _ in range(5):
            redo = 0
            for job in self.wait_jobs(pending, timeout, allow=QEMU_CPU_FLAKE):
                if job["jobstatus"] == 1:
                    made.append(job["jobresult"]["volume"])
                else:
                    root.ok("deleteVolume", id=job["jobinstanceid"])
                    redo += 1
            pending = [submit() for _ in range(redo)]
            if not pending:
                return made
        raise AssertionError("qemu-img kept failing with 'Unable to get accurate CPU usage'")

    def wait_jobs(self, job_ids: list[str], timeout: float, allow: str | None = None) -> list[dict]:
        """Wait for every job; each must succeed (or fail with a text containing ``allow``)."""
        deadline = time.monotonic() + timeout
        done: dict[str, dict] = {}
        root = self.root
        while len(done) < len(job_ids):
            for job_id in job_ids:
                if job_id in done:
                    continue
                job = root.ok("queryAsyncJobResult", jobid=job_id)
                if job["jobstatus"] != 0:
                    flake = allow is not None and allow in str(job.get("jobresult"))
                    assert job["jobstatus"] == 1 or flake, f"job {job_id} failed: {job}"
                    done[job_id] = job
            if len(done) < len(job_ids):
                assert time.monotonic() < deadline, f"{len(job_ids) - len(done)} jobs still running after {timeout}s"
                time.sleep(0.25)
        return [done[j] for j in job_ids]

    def volumes(self, ids: list[str]) -> dict[str, dict]:
        found = self.root.ok("listVolumes", ids=",".join(ids), listall="true", pagesize=len(ids) + 1,
                             page=1).get("volume", [])
        return {v["id"]: v for v in found}

    def check_volumes(self, ids: list[str], timeout: float = 600) -> dict[str, dict]:
        """checkVolume on every volume (parallel jobs); returns the volume responses by id."""
        root = self.root
        jobs = [root.ok("checkVolume", id=volume_id)["jobid"] for volume_id in ids]
        results = [job["jobresult"]["volume"] for job in self.wait_jobs(jobs, timeout)]
        return {v["id"]: v for v in results}

    def assert_volumes_open(self, ids: list[str], version: int | None = None) -> None:
        """Every image opens with its key (qemu through checkVolume); and is on ``version``."""
        checked = self.check_volumes(ids)
        assert set(checked) == set(ids)
        for volume_id, volume in checked.items():
            result = volume["volumecheckresult"]
            assert result["encryption"] == "luks" and result["unlocked"] == "true", (volume_id, result)
            assert "error" not in result, (volume_id, result)
            if version is not None:
                assert volume["kmskeyversion"] == version, (volume_id, volume["kmskeyversion"], version)

    # ------------------------------------------------------------ database facts
    def version_row(self, key_id: str, number: int) -> dict:
        rows = self.sql("SELECT v.id, v.status, v.kek_label, v.removed FROM kms_kek_versions v "
                        "JOIN kms_keys k ON k.id = v.kms_key_id WHERE k.uuid = :k AND v.version_number = :n",
                        k=key_id, n=number)
        assert len(rows) == 1, rows
        return dict(zip(("id", "status", "kek_label", "removed"), rows[0]))

    def count_on_version(self, version_id: int) -> int:
        return self.sql("SELECT COUNT(*) FROM kms_wrapped_key WHERE kek_version_id = :v AND removed IS NULL",
                        v=version_id)[0][0]

    def wrap_event_total(self, key_id: str, after_event_id: int = 0) -> tuple[int, int]:
        """(keys counted, events) over the KMS.KEY.WRAP events of the key: the sum of ``count=``."""
        rows = self.sql("SELECT e.parameters FROM event e JOIN kms_keys k ON k.id = e.resource_id "
                        "WHERE e.type = 'KMS.KEY.WRAP' AND e.resource_type = 'KmsKey' AND k.uuid = :k "
                        "AND e.id > :after", k=key_id, after=after_event_id)
        total = 0
        for (parameters,) in rows:
            assert parameters and parameters.startswith("count="), parameters
            total += int(parameters.split("=", 1)[1])
        return total, len(rows)

    def last_event_id(self) -> int:
        return self.sql("SELECT COALESCE(MAX(id), 0) FROM event")[0][0]

    def database_kek_exists(self, label: str) -> bool:
        return bool(self.sql("SELECT COUNT(*) FROM kms_database_kek_objects WHERE label = :l", l=label)[0][0])


def assert_drained(rig: Rig, services: Services, key_id: str, old: dict, old_store, volumes: list[str],
                   made: dict[str, str], wrap_events_after: int, moved: int) -> None:
    """Everything the issue asks after a drain from version ``old`` (a ``version_row``)."""
    assert rig.count_on_version(old["id"]) == 0
    row = wait_until(lambda: (lambda r: r if r["removed"] is not None else None)(rig.version_row(key_id, 1)),
                     timeout=60, what="the archived KEK to be deleted")
    assert row["status"] == "Archived"
    versions = rig.versions(key_id)
    assert versions[1]["status"] == "Archived" and versions[1]["wrappedkeys"] == 0
    assert versions[2]["status"] == "Active"
    assert not old_store(old["kek_label"]), f"KEK {old['kek_label']} is still in its store"
    # every wrapped key unwraps, to the very DEK it was made with
    unwrapped = services.unwrap_digests(key_id)
    assert len(unwrapped) == len(made) + len(volumes)
    wrong = [k for k, d in made.items() if unwrapped.get(k) != d]
    assert not wrong, f"{len(wrong)} wrapped keys do not unwrap to their DEK, e.g. {wrong[:3]}"
    # every image opens with its key, now on version 2
    rig.assert_volumes_open(volumes, version=2)
    # each key was counted once by the worker's events
    total, events = rig.wrap_event_total(key_id, wrap_events_after)
    assert total == moved, f"KMS.KEY.WRAP events count {total} keys in {events} events, expected {moved}"


# ------------------------------------------------------------------ the service layer, in this process
class Services:
    """The server's services on the rig's database and master key, used from the test process."""

    def __init__(self, kms: KmsEnv) -> None:
        from cloudstack_kms.db import Database
        from cloudstack_kms.providers.context import ProviderContext
        from cloudstack_kms.security.masterkey import MasterKey
        from cloudstack_kms.services.kms.runtime import KmsRuntime

        self.db = Database(kms.db_url)
        self.master_key = MasterKey.load(kms.data_dir / "master.key")
        self.runtime = KmsRuntime.create(ProviderContext(db=self.db, master_key=self.master_key))

    def close(self) -> None:
        self.runtime.providers.close()
        self.db.dispose()

    def __enter__(self) -> "Services":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add_wrapped_keys(self, key_uuid: str, count: int, chunk: int = 500) -> dict[str, str]:
        """``count`` new DEKs wrapped by the key's Active version (``envelope.wrap_new_dek``),
        committed ``chunk`` at a time; returns {wrapped key uuid: sha256 of the DEK}."""
        from cloudstack_kms.models.kms import KmsKey
        from cloudstack_kms.providers.base import zero
        from cloudstack_kms.services.kms import envelope

        made: dict[str, str] = {}
        for start in range(0, count, chunk):
            with self.db.transaction() as s:
                key = s.scalars(select(KmsKey).where(KmsKey.uuid == key_uuid)).one()
                for _ in range(min(chunk, count - start)):
                    new = envelope.wrap_new_dek(s, self.runtime, self.master_key, key, 256)
                    made[new.wrapped_key.uuid] = digest(new.plaintext)
                    zero(new.plaintext)
        return made

    def unwrap_digests(self, key_uuid: str, chunk: int = 1000) -> dict[str, str]:
        """Every live wrapped key of the key, unwrapped with ``envelope.unwrap``: {uuid: sha256 of the DEK}."""
        from cloudstack_kms.models.kms import KmsKey, WrappedKey
        from cloudstack_kms.providers.base import zero
        from cloudstack_kms.services.kms import envelope

        out: dict[str, str] = {}
        after = 0
        while True:
            with self.db.transaction() as s:
                key_id = s.scalar(select(KmsKey.id).where(KmsKey.uuid == key_uuid))
                rows = list(s.scalars(select(WrappedKey).where(WrappedKey.kms_key_id == key_id,
                                                               WrappedKey.removed.is_(None), WrappedKey.id > after)
                                      .order_by(WrappedKey.id).limit(chunk)))
                for row in rows:
                    dek = envelope.unwrap(s, self.runtime, self.master_key, row)
                    out[row.uuid] = digest(dek)
                    zero(dek)
            if len(rows) < chunk:
                return out
            after = rows[-1].id

    def volume_secret_digests(self, volume_uuids: list[str]) -> dict[str, str]:
        """sha256 of each volume's LUKS secret, however it is stored (passphrase or wrapped DEK)."""
        from cloudstack_kms.models.volume import Volume
        from cloudstack_kms.providers.base import zero
        from cloudstack_kms.services import volumes

        out = {}
        for start in range(0, len(volume_uuids), 1000):
            with self.db.transaction() as s:
                for volume in s.scalars(select(Volume).where(Volume.uuid.in_(volume_uuids[start:start + 1000]))):
                    secret = volumes.volume_secret(s, self.runtime, self.master_key, volume)
                    out[volume.uuid] = digest(secret)
                    zero(secret)
        return out

    def add_legacy_volumes(self, account_uuid: str, zone_uuid: str, offering_uuid: str, count: int,
                           chunk: int = 500) -> list[str]:
        """Legacy passphrase volumes without images (what createVolume makes with
        ``storage.volume.images=false``): ``volumes.allocate`` + ``new_passphrase``, state Ready."""
        from cloudstack_kms.models import Account, DataCenter
        from cloudstack_kms.models.volume import VOLUME_READY, DiskOffering
        from cloudstack_kms.providers.base import zero
        from cloudstack_kms.services import volumes

        made: list[str] = []
        for start in range(0, count, chunk):
            with self.db.transaction() as s:
                owner = s.scalars(select(Account).where(Account.uuid == account_uuid)).one()
                zone = s.scalars(select(DataCenter).where(DataCenter.uuid == zone_uuid)).one()
                offering = s.scalars(select(DiskOffering).where(DiskOffering.uuid == offering_uuid)).one()
                for _ in range(min(chunk, count - start)):
                    volume = volumes.allocate(s, owner=owner, zone=zone, offering=offering, size_gb=None,
                                              name=None, key=None)
                    row, secret = volumes.new_passphrase(s, self.master_key)
                    zero(secret)
                    volume.passphrase_id = row.id
                    volume.state = VOLUME_READY
                    made.append(volume.uuid)
        return made

    def count(self, model: Any, *where: Any) -> int:
        with self.db.transaction() as s:
            return s.scalar(select(func.count()).select_from(model).where(*where)) or 0


# ------------------------------------------------------------------ SoftHSM2, seen from outside
_LIST_KEYS = """
import json, sys
import pkcs11
from pkcs11 import Attribute, ObjectClass
token = pkcs11.lib(sys.argv[1]).get_token(token_label=sys.argv[2])
with token.open(user_pin=sys.argv[3]) as session:
    labels = [obj[Attribute.LABEL] for obj in session.get_objects({Attribute.CLASS: ObjectClass.SECRET_KEY})]
print(json.dumps(sorted(labels)))
"""


def token_key_labels(token: str) -> list[str]:
    """Labels of the secret keys on a token of the run's SoftHSM2 (``SOFTHSM2_CONF`` is in the environment)."""
    out = subprocess.run([sys.executable, "-c", _LIST_KEYS, MODULE, token, USER_PIN], env=dict(os.environ),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)
