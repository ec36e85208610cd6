"""Three cloudstack-kms servers, one per Galera node, as operators run them behind a load balancer
(tests/galera/farm.py): volumes created through all three at once, and a node that leaves and
rejoins.

Heavy: it runs on the MariaDB pass only (see conftest.py).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import pytest

from tests.galera.farm import Farm, farm_on
from tests.support.dbtools import query
from tests.support.galera import GaleraCluster
from tests.support.volumes import VolumeStore

pytestmark = [pytest.mark.slow, pytest.mark.mysql]


@dataclass
class Volumes:
    farm: Farm
    zone: str
    offering: str
    kms_key: str

    def admin(self, i: int):  # noqa: ANN201
        return self.farm.admin(i)

    @property
    def envs(self):  # noqa: ANN201
        return self.farm.envs

    @property
    def galera(self) -> GaleraCluster:
        return self.farm.galera


@pytest.fixture(scope="module")
def farm(galera_cluster: GaleraCluster, tmp_path_factory) -> Volumes:
    with farm_on(galera_cluster, tmp_path_factory.mktemp("farm-data")) as farm:
        admin = farm.admin(0)
        zone = admin.ok("listZones")["zone"][0]["id"]
        offering = admin.ok("createDiskOffering", name="farm-encrypted", displaytext="farm", disksize=1,
                            encrypt="true")["diskoffering"]["id"]
        # Metadata only: the jobs then run several per transaction (FOR UPDATE SKIP LOCKED, which
        # Galera honours on one node only: two nodes can take the same jobs, and certification at
        # commit must settle it). qemu-img on this busy host also fails now and then to measure
        # its key derivation ("Unable to get accurate CPU usage"), which is not what this tests.
        admin.ok("updateConfiguration", name="storage.volume.images", value="false")
        profile = admin.ok("listHSMProfiles", name="HSM Database Provider")["hsmprofile"][0]["id"]
        kms_key = admin.ok("createKMSKey", name="farm-key", zoneid=zone, hsmprofileid=profile)["kmskey"]["id"]
        yield Volumes(farm, zone, offering, kms_key)


def create_through(farm: Volumes, submit_on: int, poll_on: int, name: str) -> tuple[int, str, dict]:
    """createVolume through one server, its job polled through another: (HTTP status, volume id, job)."""
    submit, poll = farm.admin(submit_on), farm.admin(poll_on)
    reply = submit.request("createVolume", name=name, zoneid=farm.zone, diskofferingid=farm.offering,
                           kmskeyid=farm.kms_key)
    if reply.status != 200:
        return reply.status, reply.text, {}
    inner = reply.inner()
    return 200, inner["id"], poll.wait_job(inner["jobid"], timeout=300)


def test_120_volumes_created_concurrently_through_three_servers(farm: Volumes):
    """Every create lands on another node than the poll that follows it: writes through three nodes
    at once certify against each other (1213 at commit), which must never reach a client, and
    no job may run twice (each volume has exactly one wrapped key)."""
    results: list[tuple[int, str, dict]] = []
    lock = threading.Lock()

    def client(n: int) -> None:
        for k in range(10):
            outcome = create_through(farm, (n + k) % 3, (n + k + 1) % 3, f"farm-{n}-{k}")
            with lock:
                results.append(outcome)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    errors = [r for r in results if r[0] != 200 or r[2].get("jobstatus") != 1]
    assert len(results) == 120 and errors == [], f"{len(errors)} of {len(results)} failed, e.g. {errors[:3]}"

    # Every volume is there once, seen from every server, and its image opens with its DEK.
    ids = {volume_id for _, volume_id, _ in results}
    assert len(ids) == 120
    for i in range(3):
        listed = {v["id"] for v in farm.admin(i).ok("listVolumes", listall="true", pagesize=-1).get("volume", [])}
        assert ids <= listed, f"server {i + 1} misses {len(ids - listed)} volumes"
    store = VolumeStore(farm.envs[0])
    try:
        for volume_id in sorted(ids)[:10]:
            assert store.secret(volume_id), volume_id
            assert store.wrapped_key(volume_id)
    finally:
        store.close()
    # A job run twice would have wrapped a second DEK under the key.
    wraps = query(farm.envs[0], "SELECT COUNT(*) FROM kms_wrapped_key w JOIN kms_keys k ON k.id = w.kms_key_id "
                                "WHERE k.uuid = :key AND w.removed IS NULL", key=farm.kms_key)
    assert wraps[0][0] == 120


def test_a_stopped_node_rejoins_and_its_server_works_again(farm: Volumes):
    galera = farm.galera
    galera.stop_node(3)
    try:
        down = farm.admin(2).request("listZones")
        assert down.status == 530, down.text  # the server on the stopped node: a clean error
        made = [create_through(farm, k % 2, (k + 1) % 2, f"while-down-{k}") for k in range(6)]
        assert all(status == 200 and job.get("jobstatus") == 1 for status, _, job in made), made
    finally:
        how = galera.start_node(3)
    assert how in ("IST", "SST", "none")
    third = farm.admin(2)
    listed = {v["id"] for v in third.ok("listVolumes", listall="true", pagesize=-1).get("volume", [])}
    assert {volume_id for _, volume_id, _ in made} <= listed
    status, _volume_id, job = create_through(farm, 2, 0, "after-rejoin")
    assert status == 200 and job["jobstatus"] == 1, job
