"""rotateKMSKey and the background rewrap worker, on a private server with real LUKS volumes
and real SoftHSM2 tokens.

Rotation on each provider and across providers (database -> database, token A -> token A,
database -> pkcs11, token A -> token B): the old version goes Active -> Previous -> Archived
while the worker drains it, its KEK is then gone from its store, every volume still opens
(checkVolume runs qemu with the key) and reports the new ``kmskeyversion``, every wrapped
key unwraps to the DEK it was made with, and the ``KMS.KEY.WRAP`` events count each key once.

Also: new DEKs use the Active version at once; unwrap uses the version recorded on the
wrapped key (no trial of other versions); refusals with upstream's texts (disabled key,
disabled / foreign / missing target profile) leave no new version and no new KEK; a KEK left
on the token by a rotation that never committed does not block the next rotation.

The module's server starts with the worker paused (``kms.rewrap.interval.ms`` = 0) so that a
rotation's Previous state can be observed; a test sets the interval to 200 ms to let it drain.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from tests.support.kmsrig import Rig, Services, token_key_labels, wait_until
from tests.support.tenants import new_account, new_domain, unique

EXTRA_KEYS = 200  # wrapped keys without images, so that the drain takes several batches
BATCH = 50
PAUSED, RUNNING = 0, 200


@dataclass
class World:
    rig: Rig
    services: Services
    softhsm: Any
    owner: dict  # the account owning the keys and volumes
    token_a: str
    token_b: str
    profile_a: dict  # pkcs11 on token A, owned by ``owner``
    profile_b: dict  # pkcs11 on token B, owned by ``owner``
    default: dict    # the seeded public database profile

    def profile(self, name: str) -> dict:
        return {"database": self.default, "A": self.profile_a, "B": self.profile_b}[name]


@pytest.fixture(scope="module")
def world(env_factory, softhsm):
    token_a, token_b = unique("rotA"), unique("rotB")
    softhsm.init_token(token_a)
    softhsm.init_token(token_b)
    rig = Rig.create(env_factory, "rotation", kms_rewrap_interval_ms=PAUSED, kms_rewrap_batch_size=BATCH)
    services = Services(rig.kms)
    try:
        owner, _ = new_account(rig.root)
        owned = {"account": owner["name"], "domainid": owner["domainid"]}
        yield World(rig, services, softhsm, owner, token_a, token_b, rig.pkcs11_profile(softhsm, token_a, **owned),
                    rig.pkcs11_profile(softhsm, token_b, **owned), rig.default_profile())
    finally:
        services.close()
        rig.stop()


def pause(world: World) -> None:
    world.rig.configure(kms_rewrap_interval_ms=PAUSED)


def kek_present(world: World, store: str, label: str) -> bool:
    if store == "database":
        return world.rig.database_kek_exists(label)
    return label in token_key_labels(world.token_a if store == "A" else world.token_b)


def job_error(job: dict) -> tuple[int, str]:
    assert job["jobstatus"] == 2, job
    return job["jobresult"]["errorcode"], job["jobresult"]["errortext"]


# ------------------------------------------------------------------ rotation and drain
@pytest.mark.parametrize("source,target", [("database", "database"), ("A", "A"), ("database", "A"), ("A", "B")],
                         ids=["database", "pkcs11-same-token", "database-to-pkcs11", "token-A-to-token-B"])
def test_rotation_drains_to_the_new_version(world, source, target):
    rig = world.rig
    pause(world)
    key = rig.create_key(world.profile(source)["id"], world.owner)
    volumes = [v["id"] for v in rig.create_volumes(3, world.owner, key=key["id"])]
    extra = world.services.add_wrapped_keys(key["id"], EXTRA_KEYS)
    before = rig.versions(key["id"])
    assert [(n, v["status"], v["wrappedkeys"]) for n, v in before.items()] == [(1, "Active", 3 + EXTRA_KEYS)]
    old_label = before[1]["keklabel"]
    assert kek_present(world, source, old_label)
    events_before = rig.last_event_id()

    params = {"hsmprofileid": world.profile(target)["id"]} if target != source else {}
    job = rig.rotate(key["id"], **params)
    assert job["jobstatus"] == 1, job
    after = rig.versions(key["id"])
    assert after[1]["status"] == "Previous" and after[1]["wrappedkeys"] == 3 + EXTRA_KEYS
    assert after[2]["status"] == "Active" and after[2]["wrappedkeys"] == 0
    assert after[2]["hsmprofileid"] == world.profile(target)["id"]
    listed = rig.key(key["id"])
    assert listed["version"] == 2 and listed["hsmprofileid"] == world.profile(target)["id"]
    new_label = after[2]["keklabel"]
    assert new_label.endswith("-v2") and kek_present(world, target, new_label)

    # New DEKs are wrapped by the Active version at once; old ones still open with version 1.
    fresh = rig.create_volumes(1, world.owner, key=key["id"])[0]
    assert fresh["kmskeyversion"] == 2
    assert rig.versions(key["id"])[2]["wrappedkeys"] == 1
    assert {v["kmskeyversion"] for v in rig.volumes(volumes).values()} == {1}
    rig.assert_volumes_open(volumes[:1], version=1)

    # Let the worker drain version 1, watching it go down batch by batch.
    rig.configure(kms_rewrap_interval_ms=RUNNING)
    seen = []

    def archived() -> bool:
        v1 = rig.versions(key["id"])[1]
        seen.append(v1["wrappedkeys"])
        return v1["status"] == "Archived"

    wait_until(archived, timeout=180, interval=0.05, what="version 1 to be Archived")
    pause(world)
    assert seen == sorted(seen, reverse=True), seen
    assert any(0 < n < 3 + EXTRA_KEYS for n in seen), f"no partial drain observed: {sorted(set(seen))}"
    final = rig.versions(key["id"])
    assert [(n, v["status"], v["wrappedkeys"]) for n, v in final.items()] == \
        [(1, "Archived", 0), (2, "Active", 4 + EXTRA_KEYS)]
    row = rig.version_row(key["id"], 1)
    assert rig.count_on_version(row["id"]) == 0
    wait_until(lambda: rig.version_row(key["id"], 1)["removed"] is not None, timeout=30,
               what="the archived KEK to be deleted")
    assert not kek_present(world, source, old_label)
    assert kek_present(world, target, new_label)

    # Every volume opens (qemu) with its key, now on version 2; every wrapped key unwraps intact.
    rig.assert_volumes_open(volumes + [fresh["id"]], version=2)
    unwrapped = world.services.unwrap_digests(key["id"])
    assert {k: unwrapped[k] for k in extra} == extra
    assert len(unwrapped) == 4 + EXTRA_KEYS
    # The worker's events count each rewrapped key once (the fresh volume was born on version 2).
    total, events = rig.wrap_event_total(key["id"], events_before)
    assert total == 3 + EXTRA_KEYS and events >= (3 + EXTRA_KEYS) // BATCH


def test_unwrap_uses_the_version_recorded_on_the_wrapped_key(world):
    """With the worker paused, a key rewrapped by nobody still opens with version 1; pointing its
    row at version 2 makes unwrap fail instead of trying other versions."""
    from cloudstack_kms.errors import CloudRuntimeError
    from cloudstack_kms.models.kms import KekVersion, KmsKey, WrappedKey
    from cloudstack_kms.models.volume import Volume
    from cloudstack_kms.services.kms import envelope

    rig, services = world.rig, world.services
    pause(world)
    key = rig.create_key(world.profile_a["id"], world.owner)
    volume = rig.create_volumes(1, world.owner, key=key["id"])[0]
    assert rig.rotate(key["id"])["jobstatus"] == 1
    assert rig.volumes([volume["id"]])[volume["id"]]["kmskeyversion"] == 1
    rig.assert_volumes_open([volume["id"]], version=1)
    with services.db.transaction() as s:
        row = s.get(WrappedKey, s.scalar(select(Volume.kms_wrapped_key_id).where(Volume.uuid == volume["id"])))
        versions = {v.version_number: v for v in s.scalars(select(KekVersion).join(
            KmsKey, KmsKey.id == KekVersion.kms_key_id).where(KmsKey.uuid == key["id"]))}
        assert row.kek_version_id == versions[1].id
        assert len(envelope.unwrap(s, services.runtime, services.master_key, row)) == 32
        row.kek_version_id = versions[2].id  # never committed
        with pytest.raises(CloudRuntimeError, match="Failed to unwrap key"):
            envelope.unwrap(s, services.runtime, services.master_key, row)
        s.rollback()


# ------------------------------------------------------------------ refusals
def test_rotating_a_disabled_key_is_refused(world):
    rig = world.rig
    key = rig.create_key(world.profile_a["id"], world.owner)
    rig.root.ok("updateKMSKey", id=key["id"], enabled="false")
    labels = token_key_labels(world.token_a)
    code, text = job_error(rig.rotate(key["id"]))
    assert (code, text) == (431, f"KMS key is not enabled: {key['id']}")
    assert list(rig.versions(key["id"])) == [1]
    assert token_key_labels(world.token_a) == labels


def test_rotating_to_a_disabled_profile_is_refused(world):
    rig = world.rig
    key = rig.create_key(world.default["id"], world.owner)
    profile = rig.database_profile(account=world.owner["name"], domainid=world.owner["domainid"])
    rig.root.ok("updateHSMProfile", id=profile["id"], enabled="false")
    code, text = job_error(rig.rotate(key["id"], hsmprofileid=profile["id"]))
    assert (code, text) == (431, f"HSM profile is not enabled: {profile['name']}")
    assert list(rig.versions(key["id"])) == [1]


def test_rotating_to_foreign_profiles_is_refused(world):
    rig = world.rig
    key = rig.create_key(world.default["id"], world.owner)
    stranger, _ = new_account(rig.root)
    foreign = rig.database_profile(account=stranger["name"], domainid=stranger["domainid"])
    code, text = job_error(rig.rotate(key["id"], hsmprofileid=foreign["id"]))
    assert (code, text) == (431, f"HSM profile '{foreign['name']}' is owned by another account and cannot be used "
                                 "for this key's owner")
    other_domain = new_domain(rig.root)
    scoped = rig.database_profile(domainid=other_domain["id"])
    code, text = job_error(rig.rotate(key["id"], hsmprofileid=scoped["id"]))
    assert (code, text) == (431, f"HSM profile '{scoped['name']}' is domain-scoped and can only be used by "
                                 "accounts in its domain")
    assert list(rig.versions(key["id"])) == [1]


def test_a_user_cannot_rotate_to_another_accounts_profile(world):
    rig = world.rig
    account, user = new_account(rig.root)
    key = rig.create_key(world.default["id"], account)
    stranger, _ = new_account(rig.root)
    foreign = rig.database_profile(account=stranger["name"], domainid=stranger["domainid"])
    job = user.wait_job(user.ok("rotateKMSKey", id=key["id"], hsmprofileid=foreign["id"])["jobid"])
    code, _ = job_error(job)
    assert code == 531
    assert list(rig.versions(key["id"])) == [1]
    # The same user may rotate within the key's own profile.
    assert user.wait_job(user.ok("rotateKMSKey", id=key["id"])["jobid"])["jobstatus"] == 1
    assert rig.versions(key["id"])[2]["status"] == "Active"


def test_rotating_to_a_missing_profile_is_refused(world):
    rig = world.rig
    key = rig.create_key(world.default["id"], world.owner)
    missing = "9f0c7c9a-0000-4000-8000-000000000000"
    err = rig.root.error("rotateKMSKey", 431, id=key["id"], hsmprofileid=missing)
    assert err["errortext"] == f"Target HSM Profile not found: {missing}"
    assert list(rig.versions(key["id"])) == [1]


# ------------------------------------------------------------------ crash safety of the rotation itself
def test_kek_left_by_an_interrupted_rotation_does_not_block_the_next(world):
    """A rotation that created its KEK on the token and then never committed (a crash) leaves
    an orphan with the next version's label; the next rotation replaces it and works."""
    from cloudstack_kms.models.kms import HsmProfile
    from cloudstack_kms.services.kms import profiles

    rig, services = world.rig, world.services
    pause(world)
    key = rig.create_key(world.profile_a["id"], world.owner)
    volume = rig.create_volumes(1, world.owner, key=key["id"])[0]
    orphan = rig.versions(key["id"])[1]["keklabel"][:-len("-v1")] + "-v2"
    with services.db.transaction() as s:
        profile = s.scalars(select(HsmProfile).where(HsmProfile.uuid == world.profile_a["id"])).one()
        config = profiles.load_config(s, services.master_key, profile)
    services.runtime.provider("pkcs11").create_kek(config, orphan, 256)
    assert orphan in token_key_labels(world.token_a)

    assert rig.rotate(key["id"])["jobstatus"] == 1
    assert rig.versions(key["id"])[2]["keklabel"] == orphan
    assert token_key_labels(world.token_a).count(orphan) == 1
    rig.configure(kms_rewrap_interval_ms=RUNNING)
    wait_until(lambda: rig.versions(key["id"])[1]["status"] == "Archived", timeout=120, what="the drain")
    pause(world)
    fresh = rig.create_volumes(1, world.owner, key=key["id"])[0]
    rig.assert_volumes_open([volume["id"], fresh["id"]], version=2)
