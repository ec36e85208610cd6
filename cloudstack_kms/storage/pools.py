"""Directory-backed primary storage pools: one per zone, images named after the volume uuid."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import DataCenter
from ..models.volume import StoragePool

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
