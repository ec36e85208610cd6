"""Nothing is lost when a server is killed (``kill -9``) and its Galera node stopped mid-way.

A rotation of a key with 10,000 wrapped DEKs and real LUKS images, drained by the three servers
at once (rewrap leases): one server and its node die while the drain runs; the other two take
over the dead server's ranges once their leases expire and finish. Every DEK unwraps to what it
was, every image opens on the new version, each DEK was rewrapped once (the ``count=`` of the
``KMS.KEY.WRAP`` events adds up exactly), and the stopped node rejoins by IST and its server
works again.

A migration of legacy passphrase volumes by zone, interrupted the same way (the server running
the job and its node): a surviving server re-queues the dead server's resumable job, which
finishes; every volume keeps its secret and the images open.

Heavy: it runs on the MariaDB pass only (see conftest.py).
"""
from __future__ import annotations

import time

import pytest

from tests.galera.farm import Farm, farm_on
from tests.support.kmsrig import LUKS_ITER_MS, Rig, Services, assert_drained, wait_until
from tests.support.tenants import new_account, unique
from tests.test_migration import assert_migrated, before, legacy

pytestmark = [pytest.mark.slow, pytest.mark.mysql]

WRAPPED_KEYS = 10_000
REAL_VOLUMES = 6
LEGACY_METADATA_ONLY = 6_000


@pytest.fixture()
def farm(galera, tmp_path) -> Farm:
    with farm_on(galera, tmp_path, "recovery") as farm:
        yield farm


def rig_of(farm: Farm, through: int = 0) -> Rig:
    """The test helpers of tests/support/kmsrig.py on the farm: API calls through the first live
    server, SQL through node ``through + 1``."""
    rig = Rig(farm.envs[through], farm.keys, servers=farm.servers)
    rig.configure(storage_luks_iter_time_ms=LUKS_ITER_MS, kms_rewrap_interval_ms=0)
    rig.zone = rig.root.ok("listZones")["zone"][0]["id"]
    rig.offering = rig.root.ok("createDiskOffering", name=unique("enc"), disksize=1,
                               encrypt="true")["diskoffering"]["id"]
    return rig


def kill_server_and_its_node(farm: Farm, i: int) -> None:
    farm.servers[i].kill9()
    farm.galera.stop_node(i + 1)


def rejoin_and_serve(farm: Farm, i: int, rig: Rig, key_id: str, owner: dict) -> None:
    """Node ``i + 1`` rejoins (IST, or SST if its gap is too old), its server starts again and
    creates a volume of ``owner`` under the key."""
    how = farm.galera.start_node(i + 1)
    assert how in ("IST", "SST", "none")
    farm.start_server(i)
    # Metadata only: what is tested is the server on the rejoined node, not qemu-img, which on this
    # busy host can fail its own PBKDF benchmark even after the retries ("accurate CPU usage").
    rig.configure(storage_volume_images=False)
    job = farm.admin(i).wait_job(farm.admin(i).ok("createVolume", name=unique("back"), zoneid=rig.zone,
                                                  diskofferingid=rig.offering, kmskeyid=key_id,
                                                  account=owner["name"], domainid=owner["domainid"])["jobid"],
                                 timeout=300)
    assert job["jobstatus"] == 1, job.get("jobresult")


def test_rotation_drain_survives_a_server_and_its_node_dying(farm: Farm):
    rig = rig_of(farm)
    services = Services(farm.envs[0])
    try:
        owner, _ = new_account(rig.root)
        key = rig.create_key(rig.default_profile()["id"], owner)
        volumes = [v["id"] for v in rig.create_volumes(REAL_VOLUMES, owner, key=key["id"])]
        made = services.add_wrapped_keys(key["id"], WRAPPED_KEYS)
        total = len(made) + len(volumes)
        old = rig.version_row(key["id"], 1)
        assert rig.count_on_version(old["id"]) == total
        events_before = rig.last_event_id()

        assert rig.rotate(key["id"])["jobstatus"] == 1
        # Small runs, so that the drain takes seconds and the kill lands in its middle.
        rig.configure(kms_rewrap_batch_size=100, kms_rewrap_interval_ms=200)
        wait_until(lambda: rig.count_on_version(old["id"]) <= total * 0.7, timeout=300, interval=0.05,
                   what="the drain to be under way")
        kill_server_and_its_node(farm, 2)
        remaining = rig.count_on_version(old["id"])
        assert remaining > 0, "the drain finished before the kill: nothing was tested"
        killed_at = time.monotonic()

        wait_until(lambda: rig.versions(key["id"])[1]["status"] == "Archived", timeout=600, interval=0.2,
                   what="version 1 to be Archived by the two servers left")
        print(f"rotation: {remaining} of {total} keys left at the kill, drained "
              f"{time.monotonic() - killed_at:.1f} s later by the two servers left")
        rig.configure(kms_rewrap_interval_ms=0)
        assert_drained(rig, services, key["id"], old, rig.database_kek_exists, volumes, made, events_before, total)
        log = rig.logs()
        for needle in ("Traceback", "rewrap run failed"):
            assert needle not in log, f"{needle!r} in a server log:\n{log[-4000:]}"

        rejoin_and_serve(farm, 2, rig, key["id"], owner)
    finally:
        services.close()


def test_zone_migration_resumes_when_its_server_and_node_die(farm: Farm, softhsm):
    rig = rig_of(farm)
    services = Services(farm.envs[0])
    try:
        owner, _ = new_account(rig.root)
        # An HSM key: its wrapping is slower than the database provider's, so that the kill
        # lands between batches instead of after the last one.
        token = unique("galmig")
        softhsm.init_token(token)
        profile = rig.pkcs11_profile(softhsm, token, ispublic="true")
        key = rig.create_key(profile["id"], owner)
        legacy_images = legacy(rig, 3, owner)
        bulk = services.add_legacy_volumes(owner["id"], rig.zone, rig.offering, LEGACY_METADATA_ONLY)
        volumes = legacy_images + bulk
        state = before(rig, services, volumes)
    finally:
        services.close()
    total = len(volumes)

    def migrated(through: Rig) -> int:
        return through.sql("SELECT COUNT(*) FROM volumes v JOIN kms_keys k ON k.id = v.kms_key_id "
                           "WHERE k.uuid = :k", k=key["id"])[0][0]

    # Watched on one connection in a tight loop (a migration of this size takes a few seconds):
    # the server running the job (its executing msid, cleared when the job ends) and the first
    # batch committed; then that server and its node die.
    watch = farm.galera.connect(1, farm.database)
    try:
        job_id = rig.root.ok("migrateVolumesToKMS", kmskeyid=key["id"], zoneid=rig.zone)["jobid"]
        msid, seen = None, 0
        deadline = time.monotonic() + 300
        while not (msid and seen):
            assert time.monotonic() < deadline, f"no batch committed by a known server (msid {msid})"
            cursor = watch.cursor()
            cursor.execute("SELECT j.job_executing_msid, (SELECT COUNT(*) FROM volumes v JOIN kms_keys k ON "
                           "k.id = v.kms_key_id WHERE k.uuid = %s) FROM async_job j WHERE j.uuid = %s",
                           (key["id"], job_id))
            executing, seen = cursor.fetchone()
            msid = msid or executing
            watch.commit()  # a fresh snapshot for the next look
    finally:
        watch.close()
    runner = farm.server_of_msid(msid, 0)
    assert runner is not None, (f"no server process has msid {msid}: mshost {rig.sql('SELECT msid, pid, state FROM mshost')}"
                                f", servers {[s.proc.pid for s in farm.servers]}")
    assert seen < total, "the migration was over before the kill: nothing was tested"
    kill_server_and_its_node(farm, runner)
    survivor = next(i for i in range(3) if i != runner)
    rig.kms = farm.envs[survivor]  # SQL through a node that is up
    at_kill = migrated(rig)
    assert seen < total and at_kill < total, f"the migration was over before the kill ({at_kill} of {total})"

    # A surviving server sees the dead one's process gone, re-queues its resumable job, runs it.
    started = time.monotonic()
    job = farm.admin(survivor).wait_job(job_id, timeout=600)
    assert job["jobstatus"] == 1, job
    result = job["jobresult"]["volumemigration"]
    assert (result["migrated"], result["failed"]) == (total - at_kill, 0), result
    assert migrated(rig) == total
    services = Services(farm.envs[survivor])
    try:
        assert_migrated(rig, services, key, state, legacy_images)
    finally:
        services.close()
    print(f"migration: {at_kill} of {total} done at the kill, finished {time.monotonic() - started:.1f} s later")
    rejoin_and_serve(farm, runner, rig, key["id"], owner)
