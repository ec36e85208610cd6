"""The audit trail shown by ``listEvents``."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import REF, TINYBOOL, Base, id_column, utcnow, uuid_column


class Event(Base):
    __tablename__ = "event"
    __table_args__ = (
        UniqueConstraint("uuid", name="uc_event__uuid"),
        Index("i_event__account_id__archived__created", "account_id", "archived", "created"),
        Index("i_event__archived__level__created", "archived", "level", "created"),
        Index("i_event__domain_id", "domain_id"),
        Index("i_event__resource_id__resource_type", "resource_id", "resource_type"),
        Index("i_event__start_id", "start_id"),
    )

    id: Mapped[int] = id_column()
    uuid: Mapped[str | None] = uuid_column()
    type: Mapped[str] = mapped_column(String(50), nullable=False)
    state: Mapped[str] = mapped_column(String(32), nullable=False, default="Completed")
    description: Mapped[str] = mapped_column(String(1024), nullable=False)
    user_id: Mapped[int] = mapped_column(REF, nullable=False)
    account_id: Mapped[int] = mapped_column(REF, nullable=False)
    domain_id: Mapped[int] = mapped_column(REF, nullable=False)
    resource_id: Mapped[int | None] = mapped_column(REF)
    resource_type: Mapped[str | None] = mapped_column(String(32))
    created: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    level: Mapped[str] = mapped_column(String(16), nullable=False, default="INFO")
    start_id: Mapped[int] = mapped_column(REF, nullable=False, default=0)
    parameters: Mapped[str | None] = mapped_column(String(1024))
    archived: Mapped[bool] = mapped_column(TINYBOOL, nullable=False, default=False)
    display: Mapped[bool] = mapped_column(TINYBOOL, nullable=False, default=True)
