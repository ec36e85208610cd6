"""``api_rate_limit``: per-account API call counts of the current throttling window (see
``cloudstack_kms/api/throttle.py`` and ``db/schema-42300-kms-throttle.sql``)."""
from __future__ import annotations

from sqlalchemy import BigInteger
from sqlalchemy.orm import Mapped, mapped_column

from .base import REF, UINT, Base


class ApiRateLimit(Base):
    __tablename__ = "api_rate_limit"

    # Not autoincrement: the key is the account's id (REF: BIGINT UNSIGNED on MySQL).
    account_id: Mapped[int] = mapped_column(REF, primary_key=True, autoincrement=False)
    #: Seconds since the epoch at which the counted window began (a multiple of the interval).
    window_start: Mapped[int] = mapped_column(BigInteger, nullable=False)
    count: Mapped[int] = mapped_column(UINT, nullable=False, default=0)
