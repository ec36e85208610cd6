"""Global settings (``configuration``), changed live with ``updateConfiguration``."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, String, UniqueConstraint
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column

from .base import TINYBOOL, Base, id_column

# Two utf8mb4 varchar(8191) columns alone pass MySQL's 65,535-byte row size limit, so on
# MySQL the long values are utf8mb3, the charset of upstream CloudStack's tables.
LONG_VALUE = String(8191).with_variant(mysql.VARCHAR(8191, charset="utf8mb3"), "mysql")


class Configuration(Base):
    __tablename__ = "configuration"
    __table_args__ = (
        Index("i_configuration__category", "category"),
        Index("i_configuration__instance", "instance"),
        Index("i_configuration__component", "component"),
    )

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    category: Mapped[str] = mapped_column(String(255), nullable=False, default="Advanced")
    instance: Mapped[str] = mapped_column(String(255), nullable=False, default="DEFAULT")
    component: Mapped[str] = mapped_column(String(255), nullable=False, default="management-server")
    value: Mapped[str | None] = mapped_column(LONG_VALUE)
    description: Mapped[str | None] = mapped_column(String(1024))
    default_value: Mapped[str | None] = mapped_column(LONG_VALUE)
    updated: Mapped[datetime | None] = mapped_column(DateTime)
    scope: Mapped[int] = mapped_column(BigInteger, nullable=False, default=1)
    is_dynamic: Mapped[bool] = mapped_column(TINYBOOL, nullable=False, default=False)
    display_text: Mapped[str | None] = mapped_column(String(255))
    kind: Mapped[str | None] = mapped_column(String(255))
    options: Mapped[str | None] = mapped_column(String(255))


class Version(Base):
    """Applied schema upgrades, like CloudStack's ``version`` table."""

    __tablename__ = "version"
    __table_args__ = (UniqueConstraint("version", name="uc_version__version"),)

    id: Mapped[int] = id_column()
    version: Mapped[str] = mapped_column(String(40), nullable=False)
    updated: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    step: Mapped[str] = mapped_column(String(32), nullable=False)
