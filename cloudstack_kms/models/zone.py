"""Zones (CloudStack's ``data_center``)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import REF, TINYBOOL, Base, id_column, removed_column, uuid_column


class DataCenter(Base):
    __tablename__ = "data_center"
    __table_args__ = (
        UniqueConstraint("uuid", name="uc_data_center__uuid"),
        Index("i_data_center__domain_id", "domain_id"),
        Index("i_data_center__removed", "removed"),
    )

    id: Mapped[int] = id_column()
    uuid: Mapped[str | None] = uuid_column()
    name: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(String(255))
    dns1: Mapped[str] = mapped_column(String(255), nullable=False)
    dns2: Mapped[str | None] = mapped_column(String(255))
    ip6_dns1: Mapped[str | None] = mapped_column(String(255))
    ip6_dns2: Mapped[str | None] = mapped_column(String(255))
    internal_dns1: Mapped[str] = mapped_column(String(255), nullable=False)
    internal_dns2: Mapped[str | None] = mapped_column(String(255))
    guest_network_cidr: Mapped[str | None] = mapped_column(String(18))
    domain: Mapped[str | None] = mapped_column(String(100))
    domain_id: Mapped[int | None] = mapped_column(REF, ForeignKey("domain.id", name="fk_data_center__domain_id"))
    networktype: Mapped[str] = mapped_column(String(255), nullable=False, default="Basic")
    dhcp_provider: Mapped[str | None] = mapped_column(String(64), default="VirtualRouter")
    allocation_state: Mapped[str] = mapped_column(String(32), nullable=False, default="Enabled")
    zone_token: Mapped[str | None] = mapped_column(String(255))
    is_security_group_enabled: Mapped[bool] = mapped_column(TINYBOOL, nullable=False, default=False)
    is_local_storage_enabled: Mapped[bool] = mapped_column(TINYBOOL, nullable=False, default=False)
    sort_key: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    type: Mapped[str | None] = mapped_column(String(32), default="Core")
    removed: Mapped[datetime | None] = removed_column()
