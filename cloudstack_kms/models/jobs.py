"""Async jobs (``async_job``), the management servers that run them (``mshost``) and API sessions."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import REF, Base, id_column, utcnow, uuid_column

JOB_IN_PROGRESS = 0
JOB_SUCCEEDED = 1
JOB_FAILED = 2
JOB_CANCELLED = 3


class AsyncJob(Base):
    __tablename__ = "async_job"
    __table_args__ = (
        # Upstream names this key uc_async__uuid; ours follows the uc_<table>__<column> rule.
        UniqueConstraint("uuid", name="uc_async_job__uuid"),
        Index("i_async_job__user_id", "user_id"),
        Index("i_async_job__account_id", "account_id"),
        Index("i_async_job__instance_type__instance_id", "instance_type", "instance_id"),
        Index("i_async_job__job_cmd", "job_cmd"),
        Index("i_async_job__created", "created"),
        Index("i_async_job__last_updated", "last_updated"),
        Index("i_async_job__last_polled", "last_polled"),
        Index("i_async_job__removed", "removed"),
    )

    id: Mapped[int] = id_column()
    user_id: Mapped[int] = mapped_column(REF, nullable=False)
    account_id: Mapped[int] = mapped_column(REF, nullable=False)
    instance_type: Mapped[str | None] = mapped_column(String(64))
    instance_id: Mapped[int | None] = mapped_column(REF)
    job_cmd: Mapped[str | None] = mapped_column(String(255))
    # Request parameters (sensitive ones sealed with the master key) as JSON.
    job_cmd_info: Mapped[str | None] = mapped_column(Text)
    job_cmd_ver: Mapped[int | None] = mapped_column(Integer, default=0)
    job_status: Mapped[int | None] = mapped_column(Integer, default=JOB_IN_PROGRESS)
    job_process_status: Mapped[int | None] = mapped_column(Integer, default=0)
    job_result_code: Mapped[int | None] = mapped_column(Integer, default=0)
    # The final JSON of ``jobresult``.
    job_result: Mapped[str | None] = mapped_column(Text)
    job_init_msid: Mapped[int | None] = mapped_column(BigInteger)
    job_executing_msid: Mapped[int | None] = mapped_column(BigInteger)
    job_complete_msid: Mapped[int | None] = mapped_column(BigInteger)
    created: Mapped[datetime | None] = mapped_column(DateTime, default=utcnow)
    last_updated: Mapped[datetime | None] = mapped_column(DateTime, default=utcnow)
    last_polled: Mapped[datetime | None] = mapped_column(DateTime)
    # Completion time, shown as ``completed``; NULL while the job runs.
    removed: Mapped[datetime | None] = mapped_column(DateTime)
    uuid: Mapped[str | None] = uuid_column()
    related: Mapped[str] = mapped_column(String(40), nullable=False, default="")
    job_type: Mapped[str | None] = mapped_column(String(32), default="AsyncJob")
    job_dispatcher: Mapped[str | None] = mapped_column(String(64), default="ApiAsyncJobDispatcher")
    job_pending_signals: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class ManagementServer(Base):
    """One row per running server process; the heartbeat tells others it is alive."""

    __tablename__ = "mshost"
    __table_args__ = (UniqueConstraint("msid", name="uc_mshost__msid"),)

    id: Mapped[int] = id_column()
    msid: Mapped[int] = mapped_column(BigInteger, nullable=False)
    name: Mapped[str | None] = mapped_column(String(255))
    service_ip: Mapped[str | None] = mapped_column(String(40))
    pid: Mapped[int | None] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(10), nullable=False, default="Up")
    last_update: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    removed: Mapped[datetime | None] = mapped_column(DateTime)


class ApiSession(Base):
    """A login session. Only a SHA-256 digest of the session key is stored."""

    __tablename__ = "api_session"
    __table_args__ = (
        UniqueConstraint("session_key_hash", name="uc_api_session__session_key_hash"),
        Index("i_api_session__jsessionid", "jsessionid"),
        Index("i_api_session__user_id", "user_id"),
    )

    id: Mapped[int] = id_column()
    session_key_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    jsessionid: Mapped[str] = mapped_column(String(64), nullable=False)
    user_id: Mapped[int] = mapped_column(REF, nullable=False)
    created: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    last_access: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    removed: Mapped[datetime | None] = mapped_column(DateTime)
