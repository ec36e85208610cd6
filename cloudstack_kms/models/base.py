"""Declarative base and the column types shared by every table.

Tables follow CloudStack's layout: unsigned BIGINT ``id``, a unique ``uuid`` varchar(40),
``created`` and a ``removed`` soft-delete timestamp, all times naive UTC.
"""
from __future__ import annotations

import uuid as _uuid
from datetime import datetime, timezone

from sqlalchemy import BigInteger, Integer, String, DateTime
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# BIGINT UNSIGNED on MySQL; INTEGER on SQLite so that the primary key autoincrements.
ID = BigInteger().with_variant(mysql.BIGINT(unsigned=True), "mysql").with_variant(Integer(), "sqlite")
# Foreign-key columns use the same type without the sqlite twist.
REF = BigInteger().with_variant(mysql.BIGINT(unsigned=True), "mysql")
TINYBOOL = mysql.TINYINT(1)


def utcnow() -> datetime:
    """Naive UTC now, as CloudStack stores datetimes."""
    return datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)


def new_uuid() -> str:
    return str(_uuid.uuid4())


class Base(DeclarativeBase):
    """All tables of the server."""

    def __repr__(self) -> str:  # whitelisted fields only: rows can hold secrets
        ident = getattr(self, "uuid", None) or getattr(self, "id", None) or getattr(self, "name", None)
        return f"<{type(self).__name__} {ident}>"


def id_column() -> Mapped[int]:
    return mapped_column(ID, primary_key=True, autoincrement=True)


def uuid_column(nullable: bool = True) -> Mapped[str]:
    return mapped_column(String(40), unique=True, nullable=nullable, default=new_uuid)


def created_column(nullable: bool = True) -> Mapped[datetime]:
    return mapped_column(DateTime, nullable=nullable, default=utcnow)


def removed_column() -> Mapped[datetime | None]:
    return mapped_column(DateTime, nullable=True, index=True)
