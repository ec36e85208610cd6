"""Three cloudstack-kms servers, one per Galera node, as operators run them behind a load balancer.

They share one master key file and one primary-storage directory (as NFS would be) and reach
the database each through its own node. The servers' connections ask for causal reads
(``wsrep_sync_wait=1``, docs/operations.md): a job or session written through one node is
then read through another as soon as it committed, so clients need no stickiness.

Heavy: it runs on the MariaDB pass only (see conftest.py).
"""
from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.support.client import Client
from tests.support.dbtools import query
from tests.support.galera import GaleraCluster
from tests.support.server import KmsEnv, ServerProcess
from tests.support.volumes import VolumeStore

pytestmark = [pytest.mark.slow, pytest.mark.mysql]

#: Causal reads on every connection of a server (what docs/operations.md tells operators to set).
CAUSAL_READS = "&init_command=" + quote("SET SESSION wsrep_sync_wait=1")


@dataclass
class Farm:
    galera: GaleraCluster
    envs: list[KmsEnv]
    servers: list[ServerProcess]
    keys: dict[str, str]
    zone: str
    offering: str
    kms_key: str

    def admin(self, i: int) -> Client:
        """The root admin's signed client on server ``i`` (0-based)."""
        return Client(self.servers[i].url, self.keys["apikey"], self.keys["secretkey"])


@pytest.fixture(scope="module")
def farm(galera_cluster: GaleraCluster, tmp_path_factory) -> Farm:
    galera = galera_cluster
    database = f"kms_farm_{secrets.token_hex(3)}"
    galera.create_database(database)
    data_dir = tmp_path_factory.mktemp("farm-data")  # master key and primary storage, shared
    envs = [KmsEnv(db_url=galera.url(i, database) + CAUSAL_READS, data_dir=data_dir) for i in (1, 2, 3)]
    envs[0].init()
    galera.wait_applied(2)
    galera.wait_applied(3)
    keys = envs[0].admin_keys()
    servers: list[ServerProcess] = []
    try:
        for i, env in enumerate(envs):
            servers.append(ServerProcess(env, log_path=Path(data_dir) / f"server-{i + 1}.log").start(timeout=60))
        admin = Client(servers[0].url, keys["apikey"], keys["secretkey"])
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
        yield Farm(galera, envs, servers, keys, zone, offering, kms_key)
    finally:
        for server in servers:
            server.stop()


def create_through(farm: Farm, submit_on: int, poll_on: int, name: str) -> tuple[int, str, dict]:
    """createVolume through one server, its job polled through another: (HTTP status, volume id, job)."""
    submit, poll = farm.admin(submit_on), farm.admin(poll_on)
    reply = submit.request("createVolume", name=name, zoneid=farm.zone, diskofferingid=farm.offering,
                           kmskeyid=farm.kms_key)
    if reply.status != 200:
        return reply.status, reply.text, {}
    inner = reply.inner()
    return 200, inner["id"], poll.wait_job(inner["jobid"], timeout=300)


def test_120_volumes_created_concurrently_through_three_servers(farm: Farm):
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


def test_a_stopped_node_rejoins_and_its_server_works_again(farm: Farm):
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
