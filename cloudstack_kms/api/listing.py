"""Paging and keyword rules shared by every list command."""
from __future__ import annotations

from typing import Any, Callable

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from .errors import ServerApiError

DEFAULT_PAGE_SIZE = 500


def page_window(args: dict[str, Any], max_page_size: int = DEFAULT_PAGE_SIZE) -> tuple[int, int | None]:
    """(offset, limit) from ``page``/``pagesize``; each requires the other, as upstream."""
    page, size = args.get("page"), args.get("pagesize")
    if page is not None and size is None:
        raise ServerApiError('"pagesize" parameter is required when "page" is specified')
    if size is not None and page is None and size != -1:
        raise ServerApiError('"page" parameter is required when "pagesize" is specified')
    if size == -1:
        if page is not None:
            raise ServerApiError('"page" parameter is required when "pagesize" is specified')
        return 0, None
    if size is None:
        return 0, max_page_size
    if size > max_page_size:
        raise ServerApiError(f"Page size can't exceed max allowed page size value: {max_page_size}")
    if size <= 0 or page <= 0:
        raise ServerApiError("Page and pagesize must be positive integers")
    return (page - 1) * size, size


def paged(session: Session, stmt: Select, args: dict[str, Any], order_by: Any) -> tuple[list[Any], int]:
    """Run ``stmt`` with CloudStack paging; returns (rows of this page, total count)."""
    offset, limit = page_window(args)
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    query = stmt.order_by(order_by).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query).unique()), total


def keyword_filter(stmt: Select, args: dict[str, Any], *columns: Any) -> Select:
    keyword = args.get("keyword")
    if not keyword:
        return stmt
    from sqlalchemy import or_
    pattern = f"%{keyword}%"
    return stmt.where(or_(*(c.like(pattern) for c in columns)))


def render_list(rows: list[Any], view: Callable[[Any], dict[str, Any]]) -> list[dict[str, Any]]:
    return [view(r) for r in rows]
