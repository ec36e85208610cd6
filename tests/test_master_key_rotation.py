"""Master-key rotation: the keyring format, and ``cloudstack-kms master-key rotate`` against a
running server with real users, an HSM profile with a sealed detail, database-provider KEKs,
and real LUKS volumes (a legacy passphrase one and a KMS one).

* the keyring: a one-line file (earlier versions) still loads, ``mk1:`` values open, values
  moved to another row, damaged or under a key not in the keyring fail; a server re-reads the
  file when it changes (a promoted key seals at once, a new key opens);
* a rotation while the server serves signed calls and seals new values (which land under the
  new key), with a value planted under the old key mid-pass (a host that still sealed with
  it): the retire step waits for it to move; afterwards the old key is gone from the keyring
  (a 0600 copy beside it), no value is left under it, every call and every volume works,
  before and after a restart;
* a rotation killed with SIGKILL half way (a small batch and the test pause hook), the server
  restarted, then run again: it finishes, and nothing is lost.
"""
from __future__ import annotations

import base64
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cloudstack_kms.db import Database
from cloudstack_kms.security import keyring
from cloudstack_kms.security.masterkey import MasterKey, SealedValueError
from cloudstack_kms.services import master_key_rotation as rotation
from tests.support.client import Client
from tests.support.dbtools import execute
from tests.support.kmsrig import Rig, Services, detail_params, wait_until
from tests.support.server import ServerProcess
from tests.support.tenants import new_account

HSM_PASSWORD = "hsm-Passw0rd-" + "x" * 8


def old_format_value(key: bytes, plaintext: bytes, context: str) -> str:
    """A value as earlier versions sealed it: ``mk1:`` + Base64(nonce + AES-GCM), AAD ``v1|context``."""
    nonce = os.urandom(12)
    return "mk1:" + base64.b64encode(nonce + AESGCM(key).encrypt(nonce, plaintext, b"v1|" + context.encode())).decode()


# ------------------------------------------------------------------ the keyring, unit level
def test_one_line_key_file_of_earlier_versions_loads_and_opens_mk1_values(tmp_path):
    key = os.urandom(32)
    path = tmp_path / "master.key"
    path.write_bytes(base64.b64encode(key) + b"\n")
    master_key = MasterKey.load(path)
    assert master_key.sealing_key_id == keyring.key_id(key) and master_key.key_ids == [keyring.key_id(key)]

    legacy = old_format_value(key, b"secret", "user.secret_key:u1")
    assert master_key.open(legacy, "user.secret_key:u1") == b"secret"
    with pytest.raises(SealedValueError):  # another row
        master_key.open(legacy, "user.secret_key:u2")

    sealed = master_key.seal(b"secret", "passphrase:7")
    assert sealed.startswith(f"mk2:{master_key.sealing_key_id}:")
    assert MasterKey.key_id_of(sealed) == master_key.sealing_key_id and MasterKey.key_id_of(legacy) is None
    assert master_key.open(sealed, "passphrase:7") == b"secret"
    body = sealed.rsplit(":", 1)[1]
    tampered = base64.b64decode(body)
    tampered = tampered[:-1] + bytes([tampered[-1] ^ 1])
    for bad, context in ((sealed, "passphrase:8"),  # copied to another row
                         (sealed[:-6] + "AAAAAA", "passphrase:7"),  # damaged
                         (f"mk2:{master_key.sealing_key_id}:" + base64.b64encode(tampered).decode(), "passphrase:7"),
                         ("mk2:00000000:" + body, "passphrase:7"),  # a key not in the keyring
                         ("mk1:" + body, "passphrase:8"),  # id stripped and moved
                         ("", "passphrase:7"), ("plain", "passphrase:7")):
        with pytest.raises(SealedValueError) as caught:
            master_key.open(bad, context)
        assert body not in str(caught.value) and "secret" not in str(caught.value)
    assert master_key.open("mk1:" + body, "passphrase:7") == b"secret"  # id-less: every key is tried


def test_keyring_roles_and_a_running_process_follows_the_file(tmp_path):
    path = tmp_path / "master.key"
    first = MasterKey.create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    old_id = first.sealing_key_id
    before = first.seal(b"v", "ctx")

    prepared_ring, new = keyring.read(path).with_new_key()
    keyring.write_atomic(path, prepared_ring.render())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # Prepared: the new key opens (a value sealed elsewhere with it) but does not seal yet.
    elsewhere = MasterKey(new.key).seal(b"from another host", "ctx")
    assert first.open(elsewhere, "ctx") == b"from another host"
    assert MasterKey.key_id_of(first.seal(b"v", "ctx")) == old_id

    keyring.write_atomic(path, prepared_ring.promoted(new).render())
    # Promoted: the same process seals with the new key from the next value on, opens both.
    assert MasterKey.key_id_of(first.seal(b"v", "ctx")) == new.id
    assert first.open(before, "ctx") == b"v"

    with pytest.raises(keyring.KeyringError):  # a prepared key cannot be the sealing one
        keyring.parse(base64.b64encode(new.key) + b" next\n", "x")
    with pytest.raises(keyring.KeyringError):
        keyring.parse(b"bm90IGEga2V5\n", "x")
    damaged = tmp_path / "damaged.key"
    damaged.write_bytes(path.read_bytes())
    follower = MasterKey.load(damaged)
    damaged.write_bytes(b"garbage\n")  # a botched copy: the keys in use stay
    assert follower.open(before, "ctx") == b"v" and MasterKey.key_id_of(follower.seal(b"v", "c")) == new.id


def test_sealed_job_parameters_are_resealed_in_their_json(tmp_path):
    old_key, new_key = os.urandom(32), os.urandom(32)
    old = MasterKey(old_key)
    column = next(c for c in rotation.COLUMNS if c.name == "async_job.job_cmd_info")
    stored = json.dumps({"command": "x", "pin": {"sealed": old.seal_text("1234", "async_job:J:pin")},
                         "name": "n"}, separators=(",", ":"))
    ring_path = tmp_path / "k"
    ring_path.write_bytes(keyring.Keyring((keyring.KeyEntry(new_key), keyring.KeyEntry(old_key))).render())
    both = MasterKey.load(ring_path)
    row = rotation.Row(1, stored, lambda name: f"async_job:J:{name}")
    assert rotation.key_ids_in(column, stored) == [old.sealing_key_id]
    resealed = rotation.resealed(both, column, row)
    params = json.loads(resealed)
    assert params["name"] == "n" and rotation.key_ids_in(column, resealed) == [keyring.key_id(new_key)]
    assert both.open_text(params["pin"]["sealed"], "async_job:J:pin") == "1234"
    assert rotation.resealed(both, column, rotation.Row(1, resealed, row.context_of)) is None
    moved = rotation.Row(1, stored, lambda name: f"async_job:OTHER:{name}")
    with pytest.raises(SealedValueError):
        rotation.resealed(both, column, moved)


# ------------------------------------------------------------------ a real server
@pytest.fixture(scope="module")
def rig(env_factory):
    rig = Rig.create(env_factory, "masterkey", kms_rewrap_interval_ms=0)
    yield rig
    rig.stop()


class World:
    """What the rotation must keep working: users' keys, a profile with a sealed password, a KMS
    key on it (a database KEK), volumes with images (legacy and KMS), many legacy passphrases."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.path = rig.kms.data_dir / "master.key"
        self.users: list[Client] = []
        self.user_ids: list[str] = []
        for _ in range(2):
            account, client = new_account(rig.root)
            self.account = account
            self.users.append(client)
            self.user_ids.append(account["user"][0]["id"])
        self.profile = rig.database_profile(ispublic="true", **detail_params({"password": HSM_PASSWORD}))
        self.key = rig.create_key(self.profile["id"], self.account)
        self.volumes = [v["id"] for v in rig.create_volumes(1, self.account)]
        self.volumes += [v["id"] for v in rig.create_volumes(1, self.account, key=self.key["id"])]
        with Services(rig.kms) as services:
            self.bulk = services.add_legacy_volumes(self.account["id"], rig.zone, rig.offering, 240)
            self.bulk_digests = services.volume_secret_digests(self.bulk)

        self.admin = Client(rig.root.url, rig.keys["apikey"], rig.keys["secretkey"])  # fixed URL: see restart

    def clients(self) -> list[Client]:
        return [self.admin, *self.users]


@pytest.fixture(scope="module")
def world(rig) -> World:
    return World(rig)


class Caller(threading.Thread):
    """Signed calls by every user, all the time, until stopped; every failure recorded."""

    def __init__(self, world: World) -> None:
        super().__init__(daemon=True)
        self.world, self.calls, self.failures = world, 0, []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            for client in [*self.world.users, self.world.admin]:
                try:
                    reply = client.request("listZones")
                    if reply.status != 200:
                        self.failures.append(reply.text[:300])
                except Exception as exc:  # noqa: BLE001 - refused while restarting: not a failure of ours
                    if not getattr(self.world.rig, "restarting", False):
                        self.failures.append(repr(exc)[:300])
                self.calls += 1
            time.sleep(0.05)

    def stop(self) -> tuple[int, list[str]]:
        self.halt.set()
        self.join(30)
        return self.calls, self.failures


def rotate_cli(rig: Rig, *args: str, pause: float = 0.0) -> subprocess.Popen:
    env = dict(rig.kms.env, **({rotation.PAUSE_ENV: str(pause)} if pause else {}))
    return subprocess.Popen([sys.executable, "-m", "cloudstack_kms.cli", "master-key", "rotate", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def values_by_key(rig: Rig) -> dict[str, dict[str, int]]:
    db = Database(rig.kms.db_url)
    try:
        return rotation.status(db)
    finally:
        db.dispose()


def assert_only_under(rig: Rig, key_id: str) -> None:
    counts = values_by_key(rig)
    assert {k for per_key in counts.values() for k in per_key} == {key_id}, counts
    for table, column in (("user", "secret_key"), ("passphrase", "passphrase"), ("kms_hsm_profile_details", "value"),
                          ("kms_database_kek_objects", "key_material"), ("async_job", "job_cmd_info")):
        text = f"CAST({column} AS CHAR)"  # SQLite's LIKE never matches a BLOB (key_material)
        assert rig.sql(f"SELECT COUNT(*) FROM {table} WHERE {text} LIKE '%mk1:%'")[0][0] == 0, table
        assert rig.sql(f"SELECT COUNT(*) FROM {table} WHERE {text} LIKE '%mk2:%' "
                       f"AND {text} NOT LIKE '%mk2:{key_id}:%'")[0][0] == 0, table
        assert rig.sql(f"SELECT COUNT(*) FROM {table} WHERE {text} LIKE '%mk2:{key_id}:%'")[0][0] > 0 \
            or table == "async_job", table  # the check sees values at all


def assert_everything_works(world: World, key_id: str) -> None:
    rig = world.rig
    for client in world.clients():
        assert client.ok("listZones")["zone"]
    master_key = MasterKey.load(world.path)
    assert master_key.key_ids == [key_id]
    detail = rig.sql("SELECT d.value FROM kms_hsm_profile_details d JOIN kms_hsm_profiles p ON p.id = d.profile_id "
                     "WHERE p.uuid = :p AND d.name = 'password'", p=world.profile["id"])[0][0]
    assert MasterKey.key_id_of(detail) == key_id
    assert master_key.open_text(detail, f"kms_hsm_profile_details:{world.profile['id']}:password") == HSM_PASSWORD
    rig.create_key(world.profile["id"], world.account)  # the profile loads (its sealed detail opens)
    rig.assert_volumes_open(world.volumes)  # qemu opens each image: the passphrase and the KEK open
    with Services(rig.kms) as services:
        assert services.volume_secret_digests(world.bulk) == world.bulk_digests


def restart(rig: Rig) -> None:
    """Stop every server and start one on the same port (clients keep their URL)."""
    port = rig.live()[0].port
    rig.restarting = True
    try:
        for server in rig.live():
            server.stop()
        rig.servers = [ServerProcess(rig.kms, port=port).start()]
    finally:
        rig.restarting = False


def test_rotation_while_a_server_serves_and_seals(rig, world):
    rig.restarting = False
    old_ring = keyring.read(world.path)
    old_id = old_ring.sealing.id
    old_only = MasterKey(old_ring.sealing.key)  # a host that never got the new keyring
    assert_only_under(rig, old_id)
    caller = Caller(world)
    caller.start()
    made_during: list[tuple[str, Client]] = []
    planted = False
    proc = rotate_cli(rig, "--batch-size", "20", "--settle-seconds", "2", pause=0.2)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if not line.startswith("passphrase.passphrase"):
            continue
        if not planted:
            # Behind the pass (users come first): a user key sealed again with the old key, as a
            # host that never got the new keyring would. Retiring must wait until it moved.
            assert execute(rig.kms, "UPDATE user SET secret_key = :v WHERE uuid = :u", u=world.user_ids[0],
                           v=old_only.seal_text(world.users[0].secret, f"user.secret_key:{world.user_ids[0]}")) == 1
            planted = True
        elif len(made_during) < 3:
            # The server, started before the rotation, seals new values while it runs.
            account, client = new_account(rig.root)
            made_during.append((account["user"][0]["id"], client))
    proc.stdout.close()
    assert proc.wait(120) == 0, "".join(lines)
    calls, failures = caller.stop()
    output = "".join(lines)
    assert planted and calls > 20 and failures == [], (calls, failures[:5])
    assert "pass 2:" in output, output  # the planted value was found and moved before retiring

    new_id = keyring.read(world.path).sealing.id
    assert new_id != old_id and keyring.read(world.path).ids == [new_id]
    copy = world.path.with_name(f"master.key.retired-{old_id}")
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600 and keyring.read(copy).ids == [old_id]
    assert str(copy.name) in output and base64.b64encode(old_ring.sealing.key).decode() not in output
    assert_only_under(rig, new_id)
    for user_id, client in made_during:
        assert client.ok("listZones")["zone"]
        sealed = rig.sql("SELECT secret_key FROM user WHERE uuid = :u", u=user_id)[0][0]
        assert MasterKey.key_id_of(sealed) == new_id
    # The server still runs with the keyring it re-read: it seals new values under the new key.
    profile = rig.database_profile(**detail_params({"pin": "4321"}))
    pin = rig.sql("SELECT d.value FROM kms_hsm_profile_details d JOIN kms_hsm_profiles p ON p.id = d.profile_id "
                  "WHERE p.uuid = :p AND d.name = 'pin'", p=profile["id"])[0][0]
    assert MasterKey.key_id_of(pin) == new_id
    assert_everything_works(world, new_id)
    restart(rig)
    assert_everything_works(world, new_id)


def test_rotation_killed_half_way_then_run_again(rig, world):
    rig.restarting = False
    old_id = keyring.read(world.path).sealing.id
    caller = Caller(world)
    caller.start()
    proc = rotate_cli(rig, "--batch-size", "10", "--settle-seconds", "0.5", pause=0.2)
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if line.startswith("passphrase.passphrase") and sum(s.startswith("passphrase.") for s in seen) >= 5:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    proc.stdout.close()

    ring = keyring.read(world.path)
    new_id = ring.sealing.id
    assert ring.ids == [new_id, old_id], ring  # promoted, old key not retired
    counts = values_by_key(rig)["passphrase.passphrase"]
    assert counts.get(new_id, 0) >= 40 and counts.get(old_id, 0) > 0, counts  # half way
    for client in world.clients():
        assert client.ok("listZones")["zone"]

    restart(rig)  # a restart between the two runs loses nothing
    for client in world.clients():
        assert client.ok("listZones")["zone"]
    wait_until(lambda: caller.calls > 10, 30, what="calls after the restart")

    done = subprocess.run([sys.executable, "-m", "cloudstack_kms.cli", "master-key", "rotate", "--batch-size", "50",
                           "--settle-seconds", "0.5"], env=rig.kms.env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"continuing the rotation to key {new_id}" in done.stdout
    calls, failures = caller.stop()
    assert failures == [], failures[:5]
    assert keyring.read(world.path).ids == [new_id]
    assert world.path.with_name(f"master.key.retired-{old_id}").exists()
    assert_only_under(rig, new_id)
    assert_everything_works(world, new_id)
    restart(rig)
    assert_everything_works(world, new_id)

    status = subprocess.run([sys.executable, "-m", "cloudstack_kms.cli", "master-key", "status"], env=rig.kms.env,
                            capture_output=True, text=True, timeout=60, check=True).stdout
    assert f"{new_id}  seals" in status and f"passphrase.passphrase: {new_id}: " in status
    assert old_id not in status


def test_prepare_then_rotate_and_refusals(rig, world, tmp_path):
    """Several hosts: --prepare adds a key that opens but does not seal; rotate promotes it."""
    old_id = keyring.read(world.path).sealing.id
    out = rig.kms.cli("master-key", "rotate", "--prepare").stdout
    ring = keyring.read(world.path)
    assert ring.ids[0] == old_id and ring.prepared is not None and ring.prepared.id in out
    again = rig.kms.cli("master-key", "rotate", "--prepare", check=False)
    assert again.returncode != 0 and "finish that rotation first" in again.stderr
    # The server keeps sealing with the old key while the new one is only prepared.
    _, client = new_account(rig.root)
    assert client.ok("listZones")["zone"]
    assert values_by_key(rig)["user.secret_key"].keys() == {old_id}
    done = rig.kms.cli("master-key", "rotate", "--settle-seconds", "0.2")
    assert f"key {ring.prepared.id} now seals (promoted" in done.stdout
    assert keyring.read(world.path).ids == [ring.prepared.id]
    assert_only_under(rig, ring.prepared.id)
    assert client.ok("listZones")["zone"]


def test_unknown_key_value_blocks_retiring(rig, world):
    """A value no key of the keyring opens: nothing retired, the operator is told which row."""
    sealing = keyring.read(world.path).sealing.id
    stray = MasterKey(os.urandom(32)).seal_text("x" * 64, "passphrase:999999")
    passphrase_id = rig.sql("SELECT MIN(id) FROM passphrase")[0][0]
    original = rig.sql("SELECT passphrase FROM passphrase WHERE id = :i", i=passphrase_id)[0][0]
    execute(rig.kms, "UPDATE passphrase SET passphrase = :v WHERE id = :i", v=stray, i=passphrase_id)
    try:
        failed = rig.kms.cli("master-key", "rotate", "--settle-seconds", "0", check=False)
        assert failed.returncode != 0 and f"passphrase.passphrase #{passphrase_id}" in failed.stderr
        assert "nothing retired" in failed.stderr and stray not in failed.stdout + failed.stderr
        assert len(keyring.read(world.path).ids) == 2  # promoted, old kept
        assert "NOT IN KEYRING" in rig.kms.cli("master-key", "status").stdout
    finally:
        execute(rig.kms, "UPDATE passphrase SET passphrase = :v WHERE id = :i", v=original, i=passphrase_id)
    finished = rig.kms.cli("master-key", "rotate", "--settle-seconds", "0")
    assert "continuing the rotation" in finished.stdout
    new_id = keyring.read(world.path).sealing.id
    assert new_id != sealing and keyring.read(world.path).ids == [new_id]
    assert_only_under(rig, new_id)


def test_servers_on_other_hosts_need_prepare_and_a_copied_keyring(rig, world):
    """A live server on another host (an mshost row with a fresh heartbeat): rotate refuses to
    seal with a key that host has not got, and does not retire the old key until told the
    keyring file was copied everywhere."""
    from cloudstack_kms.models.base import utcnow
    execute(rig.kms, "INSERT INTO mshost (msid, name, pid, state, last_update) VALUES (:m, :n, 1, 'Up', :t)",
            m=987654321, n="other-host.example", t=utcnow())
    try:
        old_id = keyring.read(world.path).sealing.id
        refused = rig.kms.cli("master-key", "rotate", "--settle-seconds", "0", check=False)
        assert refused.returncode != 0 and "other-host.example" in refused.stderr and "--prepare" in refused.stderr
        assert keyring.read(world.path).ids == [old_id]  # nothing promoted

        rig.kms.cli("master-key", "rotate", "--prepare")
        first = rig.kms.cli("master-key", "rotate", "--settle-seconds", "0")
        new_id = keyring.read(world.path).sealing.id
        assert new_id != old_id and keyring.read(world.path).ids == [new_id, old_id], first.stdout
        assert "--keyring-copied" in first.stdout
        assert_only_under(rig, new_id)  # every value moved, the old key still opens (other host)

        execute(rig.kms, "UPDATE mshost SET last_update = :t WHERE msid = 987654321", t=utcnow())
        rig.kms.cli("master-key", "rotate", "--settle-seconds", "0", "--keyring-copied")
        assert keyring.read(world.path).ids == [new_id]
        assert world.path.with_name(f"master.key.retired-{old_id}").exists()
        for client in world.clients():
            assert client.ok("listZones")["zone"]
    finally:
        execute(rig.kms, "DELETE FROM mshost WHERE msid = 987654321")
