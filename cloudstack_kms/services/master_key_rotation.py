"""Master-key rotation: a new key seals, every stored secret is sealed again with it, the old
key leaves the keyring.

Progress lives in the values themselves (``mk2:<key id>:...``): a value not under the sealing
key id still has to move. So a pass killed half way is simply run again, and no table
records the rotation. Each batch is read in one short transaction and written in another
with conditional updates (``WHERE id = ? AND value = <what was read>``): a value a server
changed meanwhile (a user key regenerated) is never overwritten; the next pass looks at it
again.

The old key is retired only when a scan finds no value outside the sealing key, twice,
``settle`` seconds apart: a server that sealed with the old key just before it re-read the
keyring may still be inside that transaction (see docs/operations.md, "Master key rotation").
"""
from __future__ import annotations

import json
import os
import re
import socket
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from sqlalchemy import String, and_, cast, func, not_, or_, select, update
from sqlalchemy.orm import Session

from ..db import CONFLICT_ATTEMPTS, Database, conflict_pause, is_write_conflict
from ..models import AsyncJob, ManagementServer, User
from ..models.base import utcnow
from ..models.kms import DatabaseKekObject, HsmProfile, HsmProfileDetail
from ..models.volume import Passphrase
from ..providers.base import is_sensitive_detail
from ..security import keyring as keyring_file
from ..security.masterkey import MasterKey, SealedValueError

DEFAULT_BATCH = 200
#: Seconds between the two empty scans before retiring: longer than a transaction that seals a
#: value and then works on (a volume job seals its passphrase, then runs qemu-img for seconds).
DEFAULT_SETTLE_SEC = 30.0
#: Passes before giving up on values that keep arriving under an old key: a server still
#: sealing with it has not got the promoted keyring (another host whose file was not copied).
MAX_ROUNDS = 5
#: Test hook: seconds to sleep after each committed batch, so a test can kill the pass half way.
PAUSE_ENV = "KMS_TEST_MASTER_KEY_ROTATE_BATCH_PAUSE_SEC"
LEGACY = "mk1"  # the "key id" shown for values of earlier versions, which carry none

Report = Callable[[str], None]


class RotationError(Exception):
    """The rotation cannot go on; the text says what the operator should do. Never holds secrets."""


# ------------------------------------------------------------------ the sealed columns
@dataclass
class Row:
    id: int
    stored: str  # the column as text (key_material is bytes of ASCII)
    context_of: Callable[[str], str]  # sealed value's position (JSON entry name or "") -> context


@dataclass(frozen=True)
class SealedColumn:
    """One column holding sealed values, and how to find the context each was sealed under."""

    name: str
    model: Any
    column: Any
    select_rows: Callable[[Session, int, int, str | None], list[Row]]
    binary: bool = False

    def write(self, session: Session, row: Row, new: str) -> bool:
        old: Any = row.stored.encode("ascii") if self.binary else row.stored
        value: Any = new.encode("ascii") if self.binary else new
        result = session.execute(update(self.model).where(self.model.id == row.id, self.column == old)
                                 .values({self.column.key: value}).execution_options(synchronize_session=False))
        return result.rowcount == 1


def _outside(column: Any, sealing_id: str | None, binary: bool = False) -> Any:
    """SQL: a sealed value not under ``sealing_id`` (None: any sealed value)."""
    if binary:  # ASCII in a VARBINARY/BLOB: SQLite's LIKE never matches a BLOB, so compare it as text
        column = cast(column, String)
    sealed = or_(column.like("mk1:%"), column.like("mk2:%"))
    if sealing_id is None:
        return sealed
    return and_(sealed, not_(column.like(f"mk2:{sealing_id}:%")))


def _users(session: Session, after: int, limit: int, sealing_id: str | None) -> list[Row]:
    rows = session.execute(select(User.id, User.uuid, User.secret_key).where(
        User.id > after, _outside(User.secret_key, sealing_id)).order_by(User.id).limit(limit))
    return [Row(r.id, r.secret_key, lambda _n, u=r.uuid: f"user.secret_key:{u}") for r in rows]


def _sensitive_name() -> Any:
    name = func.lower(HsmProfileDetail.name)
    return or_(name.in_(("pin", "password", "private_key")), name.like("%secret%"))


def _hsm_details(session: Session, after: int, limit: int, sealing_id: str | None) -> list[Row]:
    rows = session.execute(
        select(HsmProfileDetail.id, HsmProfileDetail.name, HsmProfileDetail.value, HsmProfile.uuid)
        .join(HsmProfile, HsmProfile.id == HsmProfileDetail.profile_id)
        .where(HsmProfileDetail.id > after, _sensitive_name(), _outside(HsmProfileDetail.value, sealing_id))
        .order_by(HsmProfileDetail.id).limit(limit))
    # The SQL name test is a prefilter; upstream's rule (is_sensitive_detail) is the authority.
    return [Row(r.id, r.value, lambda _n, u=r.uuid, n=r.name: f"kms_hsm_profile_details:{u}:{n}")
            for r in rows if is_sensitive_detail(r.name)]


def _passphrases(session: Session, after: int, limit: int, sealing_id: str | None) -> list[Row]:
    rows = session.execute(select(Passphrase.id, Passphrase.passphrase).where(
        Passphrase.id > after, _outside(Passphrase.passphrase, sealing_id)).order_by(Passphrase.id).limit(limit))
    return [Row(r.id, r.passphrase, lambda _n, i=r.id: f"passphrase:{i}") for r in rows]


def _database_keks(session: Session, after: int, limit: int, sealing_id: str | None) -> list[Row]:
    # Removed rows too: a KEK kept for a restore or an undelete must stay readable.
    rows = session.execute(select(DatabaseKekObject.id, DatabaseKekObject.label, DatabaseKekObject.key_material)
                           .where(DatabaseKekObject.id > after,
                                  _outside(DatabaseKekObject.key_material, sealing_id, binary=True))
                           .order_by(DatabaseKekObject.id).limit(limit))
    return [Row(r.id, bytes(r.key_material).decode("ascii"),
                lambda _n, label=r.label: f"kms_database_kek_objects:{label}") for r in rows]


_SEALED_ENTRY = re.compile(r'"sealed":"(mk1:|mk2:([0-9a-f]+):)')


def _job_params(session: Session, after: int, limit: int, sealing_id: str | None) -> list[Row]:
    # Sealed job parameters sit inside the JSON of job_cmd_info (jobs/queue.py seal_params).
    rows = session.execute(select(AsyncJob.id, AsyncJob.uuid, AsyncJob.job_cmd_info).where(
        AsyncJob.id > after, AsyncJob.job_cmd_info.like('%"sealed":"mk%')).order_by(AsyncJob.id).limit(limit))
    out = []
    for r in rows:
        ids = [m.group(2) or LEGACY for m in _SEALED_ENTRY.finditer(r.job_cmd_info)]
        if sealing_id is None or any(i != sealing_id for i in ids):
            out.append(Row(r.id, r.job_cmd_info, lambda name, u=r.uuid: f"async_job:{u}:{name}"))
    return out


COLUMNS: tuple[SealedColumn, ...] = (
    SealedColumn("user.secret_key", User, User.secret_key, _users),
    SealedColumn("kms_hsm_profile_details.value", HsmProfileDetail, HsmProfileDetail.value, _hsm_details),
    SealedColumn("passphrase.passphrase", Passphrase, Passphrase.passphrase, _passphrases),
    SealedColumn("kms_database_kek_objects.key_material", DatabaseKekObject, DatabaseKekObject.key_material,
                 _database_keks, binary=True),
    SealedColumn("async_job.job_cmd_info", AsyncJob, AsyncJob.job_cmd_info, _job_params),
)


def _is_json_column(column: SealedColumn) -> bool:
    return column.model is AsyncJob


def key_ids_in(column: SealedColumn, stored: str) -> list[str]:
    """The key id of each sealed value in a stored column value (``mk1`` for id-less ones)."""
    if _is_json_column(column):
        return [m.group(2) or LEGACY for m in _SEALED_ENTRY.finditer(stored)]
    return [MasterKey.key_id_of(stored) or LEGACY]


def resealed(master_key: MasterKey, column: SealedColumn, row: Row) -> str | None:
    """The stored value with every sealed value under the sealing key (None if nothing changes).
    Raises SealedValueError for a value that does not open."""
    if not _is_json_column(column):
        return master_key.reseal(row.stored, row.context_of(""))
    params = json.loads(row.stored)
    changed = False
    for name, value in params.items():
        if isinstance(value, dict) and "sealed" in value:
            new = master_key.reseal(value["sealed"], row.context_of(name))
            if new is not None:
                value["sealed"], changed = new, True
    return json.dumps(params, separators=(",", ":")) if changed else None


# ------------------------------------------------------------------ pass, count, status
@dataclass
class PassResult:
    moved: int = 0
    conflicts: int = 0  # changed by a server between read and write: looked at again next pass
    unopenable: list[str] = field(default_factory=list)  # "column #id": never the value


def _write_batch(db: Database, column: SealedColumn, updates: list[tuple[Row, str]]) -> int:
    for attempt in range(1, CONFLICT_ATTEMPTS + 1):
        try:
            with db.transaction() as session:
                return sum(column.write(session, row, new) for row, new in updates)
        except Exception as exc:  # noqa: BLE001 - only write conflicts are retried
            if not is_write_conflict(exc) or attempt == CONFLICT_ATTEMPTS:
                raise
            conflict_pause(attempt, "master_key")
    return 0  # not reached


def _batches(db: Database, column, batch: int, outside: str | None) -> Iterator[list]:  # noqa: ANN001
    """The column's sealed rows not under key id ``outside`` (every sealed row when None), by
    ascending id, ``batch`` per short read-only transaction."""
    after = 0
    while True:
        with db.transaction(readonly=True) as session:
            rows = column.select_rows(session, after, batch, outside)
        if not rows:
            return
        yield rows
        after = rows[-1].id


def reseal_pass(db: Database, master_key: MasterKey, batch: int, report: Report) -> PassResult:
    """One pass over every sealed column: each value not under the sealing key sealed again."""
    result = PassResult()
    pause = float(os.environ.get(PAUSE_ENV) or 0)
    sealing = master_key.sealing_key_id
    for column in COLUMNS:
        for rows in _batches(db, column, batch, sealing):
            after = rows[-1].id
            updates = []
            for row in rows:
                try:
                    new = resealed(master_key, column, row)
                except SealedValueError:  # logged by the master key, naming the row
                    result.unopenable.append(f"{column.name} #{row.id}")
                    continue
                if new is not None:
                    updates.append((row, new))
            written = _write_batch(db, column, updates) if updates else 0
            result.moved += written
            result.conflicts += len(updates) - written
            report(f"{column.name}: {written} re-sealed (up to id {after})")
            if pause:
                time.sleep(pause)
    return result


def count_outside(db: Database, sealing_id: str, batch: int = 1000) -> dict[str, int]:
    """Values per column not under ``sealing_id`` (what a rotation still has to move)."""
    return {column.name: sum(len(rows) for rows in _batches(db, column, batch, sealing_id)) for column in COLUMNS}


def status(db: Database, batch: int = 1000) -> dict[str, dict[str, int]]:
    """{column: {key id: values}} over every sealed value."""
    out: dict[str, dict[str, int]] = {}
    for column in COLUMNS:
        per_key: dict[str, int] = {}
        for rows in _batches(db, column, batch, None):
            for row in rows:
                for kid in key_ids_in(column, row.stored):
                    per_key[kid] = per_key.get(kid, 0) + 1
        out[column.name] = per_key
    return out


# ------------------------------------------------------------------ several hosts
def servers_on_other_hosts(db: Database, timeout_sec: float = 30.0) -> list[str]:
    """Hostnames of live servers (fresh ``mshost`` heartbeat) other than this host."""
    since = utcnow() - timedelta(seconds=timeout_sec)
    with db.transaction(readonly=True) as session:
        names = session.scalars(select(ManagementServer.name).where(
            ManagementServer.state == "Up", ManagementServer.removed.is_(None),
            ManagementServer.last_update >= since).distinct())
        return sorted({n for n in names if n and n != socket.gethostname()})


# ------------------------------------------------------------------ the commands
def prepare(path: Path, report: Report) -> str:
    """Add a new key flagged ``next`` (opens, does not seal yet); returns its id."""
    ring = _read(path)
    if len(ring.entries) > 1:
        raise RotationError(f"the keyring already holds {len(ring.entries)} keys ({', '.join(ring.ids)}): "
                            "finish that rotation first (master-key rotate)")
    new_ring, entry = ring.with_new_key()
    keyring_file.write_atomic(path, new_ring.render())
    report(f"added key {entry.id} to {path} (opens values, does not seal yet)")
    report(f"copy {path} to every host running a server, then run: cloudstack-kms master-key rotate")
    return entry.id


def rotate(db: Database, path: Path, *, batch: int = DEFAULT_BATCH, settle_sec: float = DEFAULT_SETTLE_SEC,
           keyring_copied: bool = False, report: Report = print) -> bool:
    """Promote (a prepared or a new key), re-seal every value, retire the old keys.

    Returns True when the old keys were retired; False when the pass is done but retiring
    waits for the operator (servers on other hosts, see ``keyring_copied``).
    """
    ring = _read(path)
    others = servers_on_other_hosts(db)
    if ring.prepared is not None:
        ring = ring.promoted(ring.prepared)
        keyring_file.write_atomic(path, ring.render())
        report(f"key {ring.sealing.id} now seals (promoted in {path})")
    elif len(ring.entries) == 1:
        if others:
            raise RotationError(f"servers are running on other hosts ({', '.join(others)}): they must have the "
                                "new key before any value is sealed with it. Run master-key rotate --prepare, "
                                "copy the keyring file to every host, then master-key rotate")
        ring, entry = ring.with_new_key()
        ring = ring.promoted(entry)
        keyring_file.write_atomic(path, ring.render())
        report(f"new key {ring.sealing.id} now seals (written to {path})")
    else:
        report(f"continuing the rotation to key {ring.sealing.id}")
    if others:
        report(f"copy {path} to every host ({', '.join(others)}): until a server has it, it seals with the old key")
    master_key = MasterKey.load(path)
    sealing = master_key.sealing_key_id
    old_ids = [i for i in ring.ids if i != sealing]

    for round_number in range(1, MAX_ROUNDS + 1):
        result = reseal_pass(db, master_key, batch, report)
        report(f"pass {round_number}: {result.moved} values re-sealed with key {sealing}, "
               f"{result.conflicts} changed meanwhile")
        if result.unopenable:
            raise RotationError(f"{len(result.unopenable)} values open with no key of the keyring "
                                f"({', '.join(result.unopenable[:10])}): nothing retired. Put the key that "
                                "sealed them back in the keyring (a .retired-* copy?) and run rotate again")
        if _remaining(db, sealing, report):
            continue
        if not old_ids:
            return True
        if others and not keyring_copied:
            report("every value is under the new key; not retiring the old key while servers on other hosts "
                   "may still seal with it: once the keyring file is on every host, run "
                   "master-key rotate --keyring-copied")
            return False
        time.sleep(settle_sec)  # values sealed under the old key just before the switch, still uncommitted
        if _remaining(db, sealing, report):
            continue
        _retire(path, ring, sealing, report)
        return True
    raise RotationError(f"values keep arriving under an old key after {MAX_ROUNDS} passes: a server still "
                        f"seals with it. Copy {path} to every host, then run master-key rotate again")


def _remaining(db: Database, sealing: str, report: Report) -> int:
    left = count_outside(db, sealing)
    total = sum(left.values())
    if total:
        report("still under an old key: " + ", ".join(f"{c} {n}" for c, n in left.items() if n))
    return total


def _retire(path: Path, ring: keyring_file.Keyring, sealing: str, report: Report) -> None:
    """Keep a copy of each old key beside the keyring, then rewrite the keyring without them."""
    retired = [e for e in ring.entries if e.id != sealing]
    for entry in retired:
        copy = path.with_name(f"{path.name}.retired-{entry.id}")
        data = keyring_file.Keyring((keyring_file.KeyEntry(entry.key),)).render()
        if copy.exists():
            if copy.read_bytes() != data:
                raise RotationError(f"{copy} exists and holds another key: move it away and run rotate again")
        else:
            keyring_file.write_new(copy, data)
    keyring_file.write_atomic(path, ring.without({e.id for e in retired}).render())
    for entry in retired:
        report(f"retired key {entry.id}: a copy is in {path.name}.retired-{entry.id} (mode 0600). Keep it as "
               "long as you keep database backups taken before now: their secrets are sealed with it")
    report(f"key {sealing} is the only key of {path}; copy it to every host running a server")


def _read(path: Path) -> keyring_file.Keyring:
    try:
        return keyring_file.read(path)
    except keyring_file.KeyringError as exc:
        raise RotationError(str(exc)) from None


def format_status(path: Path, counts: dict[str, dict[str, int]], ring: keyring_file.Keyring) -> Iterable[str]:
    yield f"keyring {path}:"
    for number, entry in enumerate(ring.entries):
        role = "seals" if number == 0 else "prepared (opens, seals after rotate)" if entry.flag else "opens (retiring)"
        yield f"  {entry.id}  {role}"
    known = set(ring.ids)
    for column, per_key in counts.items():
        parts = ", ".join(f"{kid}{'' if kid in known or kid == LEGACY else ' (NOT IN KEYRING)'}: {n}"
                          for kid, n in sorted(per_key.items())) or "none"
        yield f"{column}: {parts}"
