"""Looking behind the API at volumes: their rows, their images, and their LUKS secrets.

The secret is obtained the way the server obtains it, by calling
:func:`cloudstack_kms.services.volumes.volume_secret` in the test process on the server's
database with its master key (a KMS runtime of its own, no app state). Images are read and
written with :func:`cloudstack_kms.storage.qemu.io`, so the secret reaches qemu through a pipe.
"""
from __future__ import annotations

import os
import re
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from sqlalchemy import select

from cloudstack_kms.db import Database
from cloudstack_kms.models.volume import Volume
from cloudstack_kms.providers.base import zero
from cloudstack_kms.providers.context import ProviderContext
from cloudstack_kms.security.masterkey import MasterKey
from cloudstack_kms.services import volumes
from cloudstack_kms.services.kms.runtime import KmsRuntime

from .client import Client
from .dbtools import execute, query
from .server import KmsEnv

MIB = 1024 * 1024
GIB = 1024 ** 3


class VolumeStore:
    """The server's database, master key and primary storage, as seen from the test process."""

    def __init__(self, kms: KmsEnv) -> None:
        self.kms = kms
        self.db = Database(kms.db_url)
        self.master_key = MasterKey.load(kms.data_dir / "master.key")
        self.runtime = KmsRuntime.create(ProviderContext(db=self.db, master_key=self.master_key))

    def close(self) -> None:
        self.db.dispose()

    # -------------------------------------------------------------- secrets
    def secret(self, volume_id: str) -> bytes | None:
        """The LUKS secret of a volume, exactly as the server unwraps it (None for a plain volume)."""
        with self.db.transaction() as session:
            volume = session.scalars(select(Volume).where(Volume.uuid == volume_id)).one()
            secret = volumes.volume_secret(session, self.runtime, self.master_key, volume)
        try:
            return None if secret is None else bytes(secret)
        finally:
            zero(secret)

    # -------------------------------------------------------------- images
    def pool_path(self, storage_id: str) -> Path:
        rows = query(self.kms, "SELECT path FROM storage_pool WHERE uuid = :uuid", uuid=storage_id)
        assert len(rows) == 1, f"no storage pool {storage_id}"
        return Path(rows[0][0])

    def image(self, admin_view: dict[str, Any]) -> Path:
        """The image file of a volume, from the admin view (``storageid`` and ``path``)."""
        assert admin_view.get("storageid") and admin_view.get("path"), admin_view
        return self.pool_path(admin_view["storageid"]) / admin_view["path"]

    def files(self) -> set[Path]:
        """Every file on every primary storage pool (and under the data dir's ``primary``)."""
        roots = {Path(row[0]) for row in query(self.kms, "SELECT path FROM storage_pool")}
        roots.add(self.kms.data_dir / "primary")
        found: set[Path] = set()
        for root in roots:
            if root.is_dir():
                found.update(p for p in root.rglob("*") if p.is_file())
        return found

    # -------------------------------------------------------------- rows
    def counts(self) -> dict[str, int]:
        """Rows (removed or not) in the tables a createVolume writes."""
        return {table: query(self.kms, f"SELECT COUNT(*) FROM {table}")[0][0]
                for table in ("volumes", "kms_wrapped_key", "passphrase")}

    def volume_row(self, volume_id: str) -> dict[str, Any]:
        rows = query(self.kms, "SELECT id, state, removed, kms_key_id, kms_wrapped_key_id, passphrase_id, pool_id, "
                               "path FROM volumes WHERE uuid = :uuid", uuid=volume_id)
        assert len(rows) == 1, f"no volume row {volume_id}"
        names = ("id", "state", "removed", "kms_key_id", "kms_wrapped_key_id", "passphrase_id", "pool_id", "path")
        return dict(zip(names, rows[0]))

    def wrapped_key(self, volume_id: str) -> dict[str, Any]:
        """The ``kms_wrapped_key`` row of a volume."""
        rows = query(self.kms, "SELECT w.id, w.uuid, w.wrapped_blob, w.removed, w.kek_version_id FROM "
                               "kms_wrapped_key w JOIN volumes v ON v.kms_wrapped_key_id = w.id WHERE v.uuid = :uuid",
                     uuid=volume_id)
        assert len(rows) == 1, f"volume {volume_id} has no wrapped key"
        return dict(zip(("id", "uuid", "blob", "removed", "kek_version_id"), rows[0]))

    def swap_blobs(self, first: int, second: int) -> None:
        """Exchange ``wrapped_blob`` of two ``kms_wrapped_key`` rows (by id)."""
        blobs = dict(query(self.kms, "SELECT id, wrapped_blob FROM kms_wrapped_key WHERE id IN (:a, :b)",
                           a=first, b=second))
        assert len(blobs) == 2 and blobs[first] != blobs[second]
        assert execute(self.kms, "UPDATE kms_wrapped_key SET wrapped_blob = :blob WHERE id = :id",
                       blob=bytes(blobs[second]), id=first) == 1
        assert execute(self.kms, "UPDATE kms_wrapped_key SET wrapped_blob = :blob WHERE id = :id",
                       blob=bytes(blobs[first]), id=second) == 1


# ------------------------------------------------------------------ API helpers
def set_config(admin: Client, name: str, value: str) -> str:
    """Set a global setting; returns the value it had."""
    old = [c for c in admin.ok("listConfigurations", name=name)["configuration"] if c["name"] == name][0]["value"]
    admin.ok("updateConfiguration", name=name, value=value)
    return old


@contextmanager
def config(admin: Client, name: str, value: str) -> Iterator[None]:
    old = set_config(admin, name, value)
    try:
        yield
    finally:
        set_config(admin, name, old)


def submit_volume(client: Client, **params: Any) -> dict[str, Any]:
    """createVolume's immediate answer (``id`` and ``jobid``)."""
    return client.ok("createVolume", **params)


#: Set by a test module to a callable returning the server log, shown when a job fails.
SERVER_LOG: list = []


def _log_tail() -> str:
    return SERVER_LOG[0]()[-6000:] if SERVER_LOG else ""


def finish(client: Client, submitted: dict[str, Any], timeout: float = 120.0) -> dict[str, Any]:
    """The ``volume`` of a createVolume job that must succeed."""
    job = client.wait_job(submitted["jobid"], timeout=timeout)
    assert job["jobstatus"] == 1, f"createVolume failed: {job}\n--- server log ---\n{_log_tail()}"
    assert job["jobinstancetype"] == "Volume" and job["jobinstanceid"] == submitted["id"]
    return job["jobresult"]["volume"]


def create_volume(client: Client, **params: Any) -> dict[str, Any]:
    return finish(client, submit_volume(client, **params))


def admin_view(admin: Client, volume_id: str) -> dict[str, Any]:
    found = admin.ok("listVolumes", id=volume_id, listall="true").get("volume", [])
    assert len(found) == 1, found
    return found[0]


# ------------------------------------------------------------------ the process list
class ProcessScanner:
    """Collects the command lines of qemu processes while it runs (every few milliseconds)."""

    def __init__(self, pattern: str = r"qemu-(img|io)") -> None:
        self.pattern = re.compile(pattern.encode())
        self.seen: dict[int, bytes] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        own = os.getpid()
        while not self._stop.is_set():
            for entry in os.scandir("/proc"):
                if not entry.name.isdigit() or int(entry.name) == own:
                    continue
                try:
                    with open(f"/proc/{entry.name}/cmdline", "rb") as fh:
                        cmdline = fh.read()
                except OSError:
                    continue
                if cmdline and self.pattern.search(cmdline.split(b"\0", 1)[0]):
                    self.seen[int(entry.name)] = cmdline
            time.sleep(0.01)

    def __enter__(self) -> "ProcessScanner":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def argvs(self) -> list[list[bytes]]:
        return [c.rstrip(b"\0").split(b"\0") for c in self.seen.values()]
