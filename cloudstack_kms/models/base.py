"""Declarative base and the column types shared by every table.

Tables follow CloudStack's layout: unsigned BIGINT ``id``, a unique ``uuid`` varchar(40),
``created`` and a ``removed`` soft-delete timestamp, all times naive UTC.

On MySQL/MariaDB the schema comes from the hand-written DDL in ``db/``, not from these models;
``tests/test_schema.py`` proves the two agree. Every index, unique key and foreign key therefore
carries an explicit CloudStack-style name (``i_<table>__<col>``, ``uc_<table>__<col>``,
``fk_<table>__<col>``), declared in the model's ``__table_args__`` or on its ``ForeignKey``;
never use the ``index=True`` / ``unique=True`` shortcuts, whose generated names differ.
"""
from __future__ import annotations

import uuid as _uuid
from datetime import datetime, timezone

from sqlalchemy import BigInteger, Boolean, DateTime, Integer, String
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# BIGINT UNSIGNED on MySQL; INTEGER on SQLite so that the primary key autoincrements.
ID = BigInteger().with_variant(mysql.BIGINT(unsigned=True), "mysql").with_variant(Integer(), "sqlite")
# Foreign-key columns use the same type without the sqlite twist.
REF = BigInteger().with_variant(mysql.BIGINT(unsigned=True), "mysql")
# INT UNSIGNED on MySQL (CloudStack's ``int(1) unsigned`` flags and counters), INTEGER elsewhere.
UINT = Integer().with_variant(mysql.INTEGER(unsigned=True), "mysql")
# CloudStack's ``tinyint(1)`` booleans. MySQL renders Boolean as BOOL, a synonym of tinyint(1);
# unlike a raw TINYINT it reads back as a Python bool. No CHECK constraint, as upstream.
TINYBOOL = Boolean(create_constraint=False)


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
    """The public id. Declare its key ``UniqueConstraint("uuid", name="uc_<table>__uuid")``."""
    return mapped_column(String(40), nullable=nullable, default=new_uuid)


def created_column(nullable: bool = True) -> Mapped[datetime]:
    return mapped_column(DateTime, nullable=nullable, default=utcnow)


def removed_column() -> Mapped[datetime | None]:
    """Soft-delete time. Declare its index ``Index("i_<table>__removed", "removed")``."""
    return mapped_column(DateTime, nullable=True)
