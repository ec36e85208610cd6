"""migrateVolumesToKMS on a private server, with real LUKS volumes made with legacy passphrases.

By ``volumeids`` and by each scope (``zoneid``, ``account`` + ``domainid``, ``domainid``);
foreign volumes: with ``volumeids`` the whole call is refused with upstream's text and
nothing changes, with a scope they are skipped and reported; a rerun changes nothing; a
migration interrupted by ``kill -9`` resumes after the restart (the job is resumable) and
finishes. Afterwards no ``passphrase`` row remains for a migrated volume, its secret is the
same as before (the passphrase became its DEK), and every image still opens (checkVolume runs
qemu with the key).

Every test makes its own tenants (and zone where the scope needs one), so scope results are
exact. The many volumes of the interrupted migration are legacy volumes without images
(made through the service layer, as createVolume does with ``storage.volume.images=false``),
plus three with images.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.kmsrig import Rig, Services, wait_until
from tests.support.tenants import new_account, new_domain, unique

FOREIGN_TEXT = "The following volumes do not belong to the same account as the KMS key: "
FOREIGN_REASON = "volume belongs to another account than the KMS key"
METADATA_ONLY = 4_000


@pytest.fixture(scope="module")
def rig(env_factory):
    rig = Rig.create(env_factory, "migration", kms_rewrap_interval_ms=0)
    yield rig
    rig.stop()


@pytest.fixture(scope="module")
def services(rig):
    with Services(rig.kms) as services:
        yield services


@dataclass
class Tenants:
    """ROOT ─ dom (a: the key owner, b) ─ sub (c)."""

    dom: dict
    sub: dict
    a: dict
    b: dict
    c: dict
    key: dict  # owned by a, in the rig's zone, on the database provider


def tenants(rig: Rig, profile: str | None = None) -> Tenants:
    dom = new_domain(rig.root)
    sub = new_domain(rig.root, parent=dom["id"])
    a, _ = new_account(rig.root, domainid=dom["id"])
    b, _ = new_account(rig.root, domainid=dom["id"])
    c, _ = new_account(rig.root, domainid=sub["id"])
    key = rig.create_key(profile or rig.default_profile()["id"], a)
    return Tenants(dom, sub, a, b, c, key)


def legacy(rig: Rig, count: int, account: dict, zone: str | None = None) -> list[str]:
    volumes = rig.create_volumes(count, account, zone=zone)
    assert all(v.get("encryptformat") and v.get("kmskeyid") is None for v in volumes)
    return [v["id"] for v in volumes]


def migrate(rig: Rig, **params: Any) -> dict:
    """migrateVolumesToKMS, waited for; returns the ``volumemigration`` result."""
    job = rig.root.wait_job(rig.root.ok("migrateVolumesToKMS", **params)["jobid"], timeout=600)
    assert job["jobstatus"] == 1, job
    return job["jobresult"]["volumemigration"]


def storage_rows(rig: Rig, volumes: list[str]) -> dict[str, tuple]:
    """(passphrase_id, kms_key uuid, kms_wrapped_key_id) of each volume, from the database."""
    out = {}
    for start in range(0, len(volumes), 500):
        part = volumes[start:start + 500]
        marks = ",".join(f":v{i}" for i in range(len(part)))
        rows = rig.sql(f"SELECT v.uuid, v.passphrase_id, k.uuid, v.kms_wrapped_key_id FROM volumes v "
                       f"LEFT JOIN kms_keys k ON k.id = v.kms_key_id WHERE v.uuid IN ({marks})",
                       **{f"v{i}": u for i, u in enumerate(part)})
        out.update({r[0]: tuple(r[1:]) for r in rows})
    return out


def passphrase_rows(rig: Rig, ids: list[int]) -> int:
    total = 0
    for start in range(0, len(ids), 500):
        part = ids[start:start + 500]
        marks = ",".join(f":p{i}" for i in range(len(part)))
        total += rig.sql(f"SELECT COUNT(*) FROM passphrase WHERE id IN ({marks})",
                         **{f"p{i}": p for i, p in enumerate(part)})[0][0]
    return total


@dataclass
class Before:
    passphrases: dict[str, int]
    secrets: dict[str, str]


def before(rig: Rig, services: Services, volumes: list[str]) -> Before:
    rows = storage_rows(rig, volumes)
    assert all(r[0] is not None and r[1] is None for r in rows.values()), rows
    return Before({v: r[0] for v, r in rows.items()}, services.volume_secret_digests(volumes))


def assert_migrated(rig: Rig, services: Services, key: dict, state: Before, images: list[str]) -> None:
    """Under the key (version 1 here), no passphrase row left, the same secret, images open."""
    volumes = list(state.passphrases)
    rows = storage_rows(rig, volumes)
    assert all(r[0] is None and r[1] == key["id"] and r[2] is not None for r in rows.values()), \
        [v for v, r in rows.items() if not (r[0] is None and r[1] == key["id"])][:5]
    assert len({r[2] for r in rows.values()}) == len(volumes)  # one wrapped key each
    assert passphrase_rows(rig, list(state.passphrases.values())) == 0
    assert services.volume_secret_digests(volumes) == state.secrets
    if images:
        listed = rig.volumes(images)
        assert all(listed[v]["kmskeyid"] == key["id"] and listed[v]["kmskeyversion"] == 1 for v in images)
        rig.assert_volumes_open(images, version=1)


def assert_legacy(rig: Rig, state: Before) -> None:
    rows = storage_rows(rig, list(state.passphrases))
    assert {v: r[0] for v, r in rows.items()} == state.passphrases
    assert all(r[1] is None and r[2] is None for r in rows.values())
    assert passphrase_rows(rig, list(state.passphrases.values())) == len(state.passphrases)


# ------------------------------------------------------------------ by volumeids
def test_by_volumeids_and_a_rerun(rig, services):
    t = tenants(rig)
    mine = legacy(rig, 2, t.a)
    state = before(rig, services, mine)
    result = migrate(rig, kmskeyid=t.key["id"], volumeids=",".join(mine))
    assert (result["migrated"], result["failed"], result["alreadymigrated"]) == (2, 0, 0)
    assert_migrated(rig, services, t.key, state, mine)
    wrapped = {v: r[2] for v, r in storage_rows(rig, mine).items()}
    assert rig.versions(t.key["id"])[1]["wrappedkeys"] == 2

    rerun = migrate(rig, kmskeyid=t.key["id"], volumeids=",".join(mine))
    assert (rerun["migrated"], rerun["failed"], rerun["alreadymigrated"]) == (0, 0, 2)
    assert {v: r[2] for v, r in storage_rows(rig, mine).items()} == wrapped
    assert rig.versions(t.key["id"])[1]["wrappedkeys"] == 2
    assert_migrated(rig, services, t.key, state, mine)


def test_volumeids_with_a_foreign_volume_change_nothing(rig, services):
    t = tenants(rig)
    mine, theirs = legacy(rig, 1, t.a), legacy(rig, 1, t.b)
    state = before(rig, services, mine + theirs)
    err = rig.root.error("migrateVolumesToKMS", 431, kmskeyid=t.key["id"], volumeids=",".join(mine + theirs))
    assert err["errortext"] == FOREIGN_TEXT + theirs[0]
    assert_legacy(rig, state)
    assert rig.versions(t.key["id"])[1]["wrappedkeys"] == 0
    rig.assert_volumes_open(mine + theirs)


# ------------------------------------------------------------------ by scope
def test_by_zone(rig, services):
    t = tenants(rig)
    zone = rig.root.ok("createZone", name=unique("zone"), dns1="8.8.8.8", networktype="Advanced")["zone"]["id"]
    mine = legacy(rig, 1, t.a, zone=zone)
    theirs = legacy(rig, 1, t.b, zone=zone)
    elsewhere = legacy(rig, 1, t.a)  # the key owner's, in the rig's zone
    state_mine, state_other = before(rig, services, mine), before(rig, services, theirs + elsewhere)
    result = migrate(rig, kmskeyid=t.key["id"], zoneid=zone)
    assert (result["migrated"], result["failed"]) == (1, 0)
    assert result["skippedvolumes"] == [{"volumeid": theirs[0], "reason": FOREIGN_REASON}]
    assert_migrated(rig, services, t.key, state_mine, mine)
    assert_legacy(rig, state_other)
    zone_row = rig.sql("SELECT w.zone_id = z.id FROM volumes v JOIN kms_wrapped_key w ON w.id = v.kms_wrapped_key_id "
                       "JOIN data_center z ON z.uuid = :z WHERE v.uuid = :v", z=zone, v=mine[0])
    assert zone_row and zone_row[0][0]  # the wrapped key carries the volume's zone
    rig.assert_volumes_open(theirs + elsewhere)


def test_by_account_and_domain(rig, services):
    t = tenants(rig)
    mine, theirs = legacy(rig, 2, t.a), legacy(rig, 1, t.b)
    state_mine, state_theirs = before(rig, services, mine), before(rig, services, theirs)
    result = migrate(rig, kmskeyid=t.key["id"], account=t.a["name"], domainid=t.dom["id"])
    assert (result["migrated"], result["skipped"], result["failed"]) == (2, 0, 0)
    assert_migrated(rig, services, t.key, state_mine, mine)
    assert_legacy(rig, state_theirs)
    # Another account's scope with this key: every volume skipped and reported, none changed.
    result = migrate(rig, kmskeyid=t.key["id"], account=t.b["name"], domainid=t.dom["id"])
    assert result["migrated"] == 0
    assert result["skippedvolumes"] == [{"volumeid": theirs[0], "reason": FOREIGN_REASON}]
    assert_legacy(rig, state_theirs)


def test_by_domain_skips_and_reports_other_accounts(rig, services):
    t = tenants(rig)
    mine, peer, sub = legacy(rig, 1, t.a), legacy(rig, 1, t.b), legacy(rig, 1, t.c)
    state_mine, state_others = before(rig, services, mine), before(rig, services, peer + sub)
    result = migrate(rig, kmskeyid=t.key["id"], domainid=t.dom["id"])
    assert (result["migrated"], result["failed"]) == (1, 0)
    assert sorted(result["skippedvolumes"], key=lambda s: s["volumeid"]) == sorted(
        [{"volumeid": v, "reason": FOREIGN_REASON} for v in peer + sub], key=lambda s: s["volumeid"])
    assert result["skipped"] == 2
    assert_migrated(rig, services, t.key, state_mine, mine)
    assert_legacy(rig, state_others)
    rig.assert_volumes_open(peer + sub)


# ------------------------------------------------------------------ interrupted and resumed
@pytest.mark.slow
def test_interrupted_migration_resumes(rig, services, softhsm):
    token = unique("migr")
    softhsm.init_token(token)
    profile = rig.pkcs11_profile(softhsm, token, ispublic="true")
    t = tenants(rig, profile["id"])
    images = legacy(rig, 3, t.a)
    bulk = services.add_legacy_volumes(t.a["id"], rig.zone, rig.offering, METADATA_ONLY)
    volumes = images + bulk
    state = before(rig, services, volumes)
    total = len(volumes)

    def migrated() -> int:
        return rig.sql("SELECT COUNT(*) FROM volumes v JOIN kms_keys k ON k.id = v.kms_key_id WHERE k.uuid = :k",
                       k=t.key["id"])[0][0]

    job_id = rig.root.ok("migrateVolumesToKMS", kmskeyid=t.key["id"], account=t.a["name"],
                         domainid=t.dom["id"])["jobid"]
    seen = wait_until(migrated, timeout=300, interval=0.02, what="the first batch to commit")
    rig.kill9(rig.live()[0])
    at_kill = migrated()
    assert seen < total and at_kill < total, \
        f"the migration committed all {total} volumes at once: batches are not committed one by one"
    assert rig.sql("SELECT job_status FROM async_job WHERE uuid = :j", j=job_id)[0][0] == 0
    # The batch in flight was rolled back whole: no wrapped key without its volume.
    assert rig.sql("SELECT COUNT(*) FROM kms_wrapped_key w JOIN kms_keys k ON k.id = w.kms_key_id "
                   "WHERE k.uuid = :k", k=t.key["id"])[0][0] == at_kill

    rig.start()  # recovers the dead server's resumable job and runs it again
    job = rig.root.wait_job(job_id, timeout=600)
    assert job["jobstatus"] == 1, job
    result = job["jobresult"]["volumemigration"]
    assert (result["migrated"], result["failed"]) == (total - at_kill, 0)
    assert migrated() == total
    assert rig.versions(t.key["id"])[1]["wrappedkeys"] == total
    assert_migrated(rig, services, t.key, state, images)
