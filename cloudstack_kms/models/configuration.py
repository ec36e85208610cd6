"""Global settings (``configuration``), changed live with ``updateConfiguration``."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, id_column


class Configuration(Base):
    __tablename__ = "configuration"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    category: Mapped[str] = mapped_column(String(255), nullable=False, default="Advanced", index=True)
    instance: Mapped[str] = mapped_column(String(255), nullable=False, default="DEFAULT", index=True)
    component: Mapped[str] = mapped_column(String(255), nullable=False, default="management-server", index=True)
    value: Mapped[str | None] = mapped_column(String(8191))
    description: Mapped[str | None] = mapped_column(String(1024))
    default_value: Mapped[str | None] = mapped_column(String(8191))
    updated: Mapped[datetime | None] = mapped_column(DateTime)
    scope: Mapped[int] = mapped_column(BigInteger, nullable=False, default=1)
    is_dynamic: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    display_text: Mapped[str | None] = mapped_column(String(255))
    kind: Mapped[str | None] = mapped_column(String(255))
    options: Mapped[str | None] = mapped_column(String(255))


class Version(Base):
    """Applied schema upgrades, like CloudStack's ``version`` table."""

    __tablename__ = "version"

    id: Mapped[int] = id_column()
    version: Mapped[str] = mapped_column(String(40), nullable=False, unique=True)
    updated: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    step: Mapped[str] = mapped_column(String(32), nullable=False)
