"""Directory-backed primary storage pools: one per zone, images named after the volume uuid."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..models import DataCenter
from ..models.volume import StoragePool, Volume

POOL_DIR = "primary"


def pool_for_zone(session: Session, zone: DataCenter) -> StoragePool:
    """The zone's pool; created next to the existing pools when a zone has none yet."""
    pool = session.scalars(select(StoragePool).where(StoragePool.data_center_id == zone.id,
                                                     StoragePool.removed.is_(None)).order_by(StoragePool.id)).first()
    if pool is not None:
        return pool
    existing = session.scalars(select(StoragePool).where(StoragePool.removed.is_(None))
                               .order_by(StoragePool.id)).first()
    if existing is None:
        raise RuntimeError("no primary storage is configured; run 'cloudstack-kms db init'")
    pool = StoragePool(name=f"primary-{zone.name}", data_center_id=zone.id,
                       path=str(Path(existing.path).parent / zone.uuid))
    session.add(pool)
    session.flush()
    return pool


def image_path(pool: StoragePool, volume_uuid: str) -> Path:
    directory = Path(pool.path)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    return directory / f"{volume_uuid}.qcow2"


def seed_pools(session: Session, data_dir: Path | None = None, **_: Any) -> list[str]:
    """One pool per zone without one, under ``<data dir>/primary/<zone uuid>``."""
    if data_dir is None:
        return []
    created = []
    for zone in session.scalars(select(DataCenter).where(DataCenter.removed.is_(None))):
        has_pool = session.scalar(select(StoragePool.id).where(StoragePool.data_center_id == zone.id,
                                                               StoragePool.removed.is_(None)))
        if not has_pool:
            path = Path(data_dir).resolve() / POOL_DIR / zone.uuid
            session.add(StoragePool(name=f"primary-{zone.name}", data_center_id=zone.id, path=str(path)))
            created.append(f"primary storage {path}")
    return created


@dataclass(frozen=True)
class PoolUsage:
    """What a pool holds, measured now.

    ``capacity_bytes`` and ``used_bytes`` are those of the filesystem the pool directory lives on
    (as a hypervisor reports a directory pool: size, and size minus free blocks); ``device``
    tells pools sharing one filesystem apart, so that totals count it once.
    ``allocated_bytes`` is the sum of the sizes of the live volumes placed on the pool.
    """

    device: int
    capacity_bytes: int
    used_bytes: int
    allocated_bytes: int


def _existing(path: Path) -> Path:
    """``path``, or its nearest existing ancestor (a pool directory appears with its first image)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path("/")


def filesystem_usage(path: str) -> tuple[int, int, int]:
    """(device, size, used) in bytes of the filesystem that holds ``path``."""
    where = _existing(Path(path))
    stats = os.statvfs(where)
    size = stats.f_blocks * stats.f_frsize
    used = (stats.f_blocks - stats.f_bfree) * stats.f_frsize
    return os.stat(where).st_dev, size, used


def allocated_bytes(session: Session, pool_ids: Iterable[int]) -> dict[int, int]:
    """Sum of the sizes of the live volumes on each pool."""
    ids = list(pool_ids)
    if not ids:
        return {}
    rows = session.execute(select(Volume.pool_id, func.coalesce(func.sum(Volume.size), 0))
                           .where(Volume.pool_id.in_(ids), Volume.removed.is_(None))
                           .group_by(Volume.pool_id)).all()
    found = {pool_id: int(total) for pool_id, total in rows}
    return {pool_id: found.get(pool_id, 0) for pool_id in ids}


def usage(session: Session, pools: Iterable[StoragePool]) -> dict[int, PoolUsage]:
    """The usage of each pool, by pool id, measured at the time of the call."""
    pools = list(pools)
    allocated = allocated_bytes(session, [p.id for p in pools])
    result = {}
    for pool in pools:
        device, size, used = filesystem_usage(pool.path)
        result[pool.id] = PoolUsage(device, size, used, allocated[pool.id])
    return result
