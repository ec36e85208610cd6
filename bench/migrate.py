"""migrateVolumesToKMS throughput: 100,000 legacy passphrase volumes moved under a KMS key.

    python bench/migrate.py --db-url mysql+mysqldb://root@127.0.0.1:3306 [--volumes N]
                            [--providers database,pkcs11] [--driver inprocess|server]
                            [--target-sec S] [--keep]

For each provider: a fresh database (created under ``--db-url`` and dropped afterwards; a
SQLite file when no URL is given), ``db init``, ``storage.volume.images=false`` (volumes are
metadata only, as the issue specifies), a KMS key of the admin account (the seeded
``database`` profile, or a public pkcs11 profile on a temporary SoftHSM2 token), and
``--volumes`` legacy volumes: each a 48-byte random secret as Base64 text sealed with the
master key in ``passphrase``, exactly what createVolume stores (bulk-inserted: set-up, not
measured). Then the migration of the admin account's scope, timed:

* ``--driver inprocess`` (default): the code the job runs — ``migration.candidates_by_scope``
  and ``migration.migrate_batch`` per batch of ``migration.BATCH`` volumes, each batch its own
  transaction — called in this process;
* ``--driver server``: a real server process (``cloudstack-kms serve``) runs the
  ``migrateVolumesToKMS`` job; the time is from the API call to the job's end.

Printed per provider: volumes/s, the raw wrap rate of the provider (one thread, no database)
and the ratio, then checks (every volume under the key with its passphrase row gone, one
wrapped key each, a sample of volumes whose secret is unchanged) and PASS or FAIL against the
target (default: all volumes within 60 s). Exit status 1 if a check or the target fails.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import random
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _kmsbench as kb  # noqa: E402

CHECK_SAMPLE = 1_000
RAW_SAMPLE = 5_000


def make_offering(world: kb.World) -> int:
    from cloudstack_kms.models.volume import DiskOffering
    with world.db.transaction() as s:
        offering = DiskOffering(name="bench-encrypted", display_text="bench", disk_size=1024 ** 3, encrypt=True)
        s.add(offering)
        s.flush()
        return offering.id


def insert_legacy_volumes(world: kb.World, count: int, offering_id: int, keep: int) -> dict[str, bytes]:
    """``count`` legacy volumes of the admin account; returns {uuid: secret} for ``keep`` of them."""
    from sqlalchemy import func, insert, select

    from cloudstack_kms.models import DataCenter
    from cloudstack_kms.models.base import utcnow
    from cloudstack_kms.models.volume import ENCRYPT_LUKS, VOLUME_READY, Passphrase, StoragePool, Volume
    from cloudstack_kms.storage import pools

    with world.db.transaction() as s:
        zone = s.scalars(select(DataCenter).order_by(DataCenter.id)).first()
        pool_id = pools.pool_for_zone(s, zone).id
        next_id = (s.scalar(select(func.max(Passphrase.id))) or 0) + 1
        zone_id = zone.id
        assert s.get(StoragePool, pool_id) is not None
    kept: dict[str, bytes] = {}
    chunk = 5_000
    for start in range(0, count, chunk):
        phrases, volumes = [], []
        now = utcnow()
        for i in range(min(chunk, count - start)):
            pid = next_id + start + i
            secret = base64.b64encode(os.urandom(48))
            vid = str(uuid.uuid4())
            phrases.append({"id": pid, "passphrase": world.master_key.seal(secret, f"passphrase:{pid}")})
            volumes.append({"uuid": vid, "name": f"vol-{vid[:8]}", "account_id": 2, "domain_id": 1, "pool_id": pool_id,
                            "size": 1024 ** 3, "data_center_id": zone_id, "volume_type": "DATADISK",
                            "disk_offering_id": offering_id, "format": "QCOW2", "state": VOLUME_READY,
                            "provisioning_type": "thin", "display_volume": True, "passphrase_id": pid,
                            "encrypt_format": ENCRYPT_LUKS, "created": now})
            if len(kept) < keep and random.random() < 4 * keep / count:
                kept[vid] = secret
        with world.db.transaction() as s:
            s.execute(insert(Passphrase.__table__), phrases)
            s.execute(insert(Volume.__table__), volumes)
    return kept


def raw_wrap_rate(world: kb.World, key_id: int, n: int) -> float:
    from sqlalchemy import select

    from cloudstack_kms.models.kms import ACTIVE, HsmProfile, KekVersion, KmsKey
    from cloudstack_kms.providers.base import WrapContext
    from cloudstack_kms.services.kms import profiles

    with world.db.transaction() as s:
        key = s.get(KmsKey, key_id)
        version = s.scalars(select(KekVersion).where(KekVersion.kms_key_id == key_id,
                                                     KekVersion.status == ACTIVE)).one()
        config = profiles.load_config(s, world.master_key, s.get(HsmProfile, version.hsm_profile_id))
        key_uuid, label = key.uuid, version.kek_label
    provider = world.runtime.provider(config.protocol)
    secret = base64.b64encode(os.urandom(48))
    items = [WrapContext(wrapped_key_uuid=str(uuid.uuid4()), kms_key_uuid=key_uuid) for _ in range(n)]
    for ctx in items[:200]:
        provider.wrap(config, label, secret, ctx)
    start = time.perf_counter()
    for ctx in items:
        provider.wrap(config, label, secret, ctx)
    return n / (time.perf_counter() - start)


def migrate_in_process(world: kb.World, key_id: int) -> tuple[float, dict]:
    from cloudstack_kms.models import Account
    from cloudstack_kms.models.kms import KmsKey
    from cloudstack_kms.services.kms import migration

    start = time.perf_counter()
    report = migration.MigrationReport()
    with world.db.transaction() as s:
        key = s.get(KmsKey, key_id)
        migration.check_key_usable(s, key)
        ids = migration.candidates_by_scope(s, key, zone_id=None, domain=None, account=s.get(Account, 2),
                                            report=report)
    for i in range(0, len(ids), migration.BATCH):
        migration.migrate_batch(world.db, world.runtime, world.master_key, key_id, ids[i:i + migration.BATCH],
                                report, user_id=2)
    return time.perf_counter() - start, report.as_result()


# ------------------------------------------------------------------ --driver server
def _sign(params: dict[str, str], secret: str) -> str:
    query = "&".join(f"{k}={quote(str(v), safe='.-*_').replace('~', '%7E')}"
                     for k, v in sorted(params.items())).lower()
    return base64.b64encode(hmac.new(secret.encode(), query.encode(), hashlib.sha1).digest()).decode()


def migrate_via_server(world: kb.World, url: str, key_uuid: str, tmp: Path) -> tuple[float, dict]:
    import requests

    from cloudstack_kms.cli import user_keys
    from cloudstack_kms.config import Settings

    settings = Settings(db_url=url, data_dir=world.data_dir, master_key_file=world.data_dir / "master.key")
    keys = user_keys(settings, "admin", "/")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "KMS_DB_URL": url, "KMS_DATA_DIR": str(world.data_dir),
           "KMS_MASTER_KEY_FILE": str(world.data_dir / "master.key")}
    log = open(tmp / f"server-{port}.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "cloudstack_kms.cli", "serve", "--port", str(port)], env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    api = f"http://127.0.0.1:{port}/client/api"

    def call(command: str, **params: str) -> dict:
        query = {"command": command, "response": "json", **params, "apiKey": keys["apikey"]}
        query["signature"] = _sign(query, keys["secretkey"])
        body = requests.get(api, params=query, timeout=60).json()
        return next(iter(body.values()))

    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                call("listZones")
                break
            except requests.RequestException:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("server did not start") from None
                time.sleep(0.1)
        start = time.perf_counter()
        job_id = call("migrateVolumesToKMS", kmskeyid=key_uuid, account="admin",
                      domainid=call("listDomains", name="ROOT")["domain"][0]["id"])["jobid"]
        while True:
            job = call("queryAsyncJobResult", jobid=job_id)
            if job["jobstatus"] != 0:
                break
            time.sleep(0.05)
        elapsed = time.perf_counter() - start
        if job["jobstatus"] != 1:
            raise RuntimeError(f"migrateVolumesToKMS failed: {json.dumps(job.get('jobresult'))}")
        return elapsed, job["jobresult"]["volumemigration"]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def verify(world: kb.World, key_id: int, count: int, kept: dict[str, bytes]) -> list[str]:
    from sqlalchemy import func, select

    from cloudstack_kms.models.kms import WrappedKey
    from cloudstack_kms.models.volume import Passphrase, Volume
    from cloudstack_kms.services import volumes

    problems = []
    with world.db.transaction() as s:
        done = s.scalar(select(func.count()).select_from(Volume).where(
            Volume.kms_key_id == key_id, Volume.passphrase_id.is_(None), Volume.kms_wrapped_key_id.is_not(None)))
        if done != count:
            problems.append(f"{done} of {count} volumes are under the key")
        left = s.scalar(select(func.count()).select_from(Passphrase))
        if left:
            problems.append(f"{left} passphrase rows remain")
        wrapped = s.scalar(select(func.count()).select_from(WrappedKey).where(WrappedKey.kms_key_id == key_id))
        if wrapped != count:
            problems.append(f"{wrapped} wrapped keys for {count} volumes")
        for vid, secret in kept.items():
            volume = s.scalars(select(Volume).where(Volume.uuid == vid)).one()
            if bytes(volumes.volume_secret(s, world.runtime, world.master_key, volume)) != secret:
                problems.append(f"volume {vid} no longer has its secret")
                break
    return problems


def run_provider(provider: str, base_url: str, tmp: Path, count: int, driver: str, target: float,
                 keep: bool) -> bool:
    bench_db = kb.BenchDb(base_url, tmp, f"migrate_{provider}").create()
    world = None
    try:
        world = kb.init_world(bench_db.url, tmp / f"data-{provider}")
        token = None
        if provider == "pkcs11":
            token = f"migrate-{uuid.uuid4().hex[:8]}"
            kb.init_token(token)
        kb.set_config(world, storage_volume_images=False)
        profile = kb.make_profile(world, provider, token)
        key = kb.make_key(world, profile.id, f"bench-{provider}")
        offering_id = make_offering(world)
        t = time.perf_counter()
        kept = insert_legacy_volumes(world, count, offering_id, CHECK_SAMPLE)
        setup = time.perf_counter() - t
        raw = raw_wrap_rate(world, key.id, min(RAW_SAMPLE, count))
        if driver == "server":
            world.runtime.providers.close()  # the server process takes over the token
            seconds, result = migrate_via_server(world, bench_db.url, key.uuid, tmp)
            driven = "a real server process running the migrateVolumesToKMS job"
        else:
            seconds, result = migrate_in_process(world, key.id)
            driven = "migration.migrate_batch() per batch in this process"
        problems = verify(world, key.id, count, kept)
        if result["migrated"] != count or result["failed"]:
            problems.append(f"result: {result['migrated']} migrated, {result['failed']} failed")
        rate = count / seconds
        ok = seconds <= target and not problems
        print(f"[{provider}] {count:,} legacy volumes, metadata only (inserted in {setup:.1f} s); driver: {driven}")
        print(f"[{provider}]   migration: {seconds:6.1f} s = {kb.fmt_rate(rate)} volumes/s "
              f"(target: {count:,} volumes in <= {target:g} s)")
        print(f"[{provider}]   raw wrap (provider calls only, one thread): {kb.fmt_rate(raw)} keys/s; "
              f"migration/raw = {rate / raw:.0%}")
        for problem in problems:
            print(f"[{provider}]   CHECK FAILED: {problem}")
        if not problems:
            print(f"[{provider}]   checks: all volumes under the key, no passphrase row left, one wrapped key "
                  f"each, {len(kept)} sampled secrets unchanged")
        print(f"[{provider}] {'PASS' if ok else 'FAIL'}")
        return ok
    finally:
        if world is not None:
            world.dispose()
        if not keep:
            bench_db.drop()
        else:
            print(f"[{provider}] kept database {kb.describe_url(bench_db.url)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--volumes", type=int, default=100_000)
    parser.add_argument("--driver", choices=("inprocess", "server"), default="inprocess")
    kb.common_args(parser, "database,pkcs11")
    args = parser.parse_args(argv)
    providers, ok = kb.run_providers("kms-bench-migrate-", args.providers, args.db_url, args.keep,
                                     lambda p, tmp: run_provider(p, args.db_url, tmp, args.volumes, args.driver, args.target_sec, args.keep))
    verdict = "PASS" if ok else "FAIL"
    print(f"{verdict}: migration of {args.volumes:,} volumes within {args.target_sec:g} s on {', '.join(providers)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
