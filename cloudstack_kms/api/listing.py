"""Paging and keyword rules shared by every list command."""
from __future__ import annotations

from typing import Any, Callable

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from ..errors import InvalidParameterValue, ServerApiError

DEFAULT_PAGE_SIZE = 500
PAGESIZE_UNLIMITED = -1


def check_paging_pair(args: dict[str, Any]) -> None:
    """Each of ``page`` and ``pagesize`` requires the other (``pagesize=-1`` stands alone).

    Checked by the dispatcher before any list command runs, as upstream's ParamProcessWorker does.
    """
    page, size = args.get("page"), args.get("pagesize")
    if page is None and size is not None and size != PAGESIZE_UNLIMITED:
        raise ServerApiError('"page" parameter is required when "pagesize" is specified')
    if size is None and page is not None:
        raise ServerApiError('"pagesize" parameter is required when "page" is specified')


def max_page_size(session: Session) -> int:
    """The live ``default.page.size`` setting: the cap on ``pagesize`` and the default page."""
    from ..services import settings
    try:
        return int(settings.get_value(session, "default.page.size"))
    except (KeyError, TypeError, ValueError):
        return DEFAULT_PAGE_SIZE


def page_window(args: dict[str, Any], max_page_size: int = DEFAULT_PAGE_SIZE) -> tuple[int, int | None]:
    """(offset, limit) from ``page``/``pagesize``, with upstream's texts for each rule."""
    check_paging_pair(args)
    page, size = args.get("page"), args.get("pagesize")
    if size == PAGESIZE_UNLIMITED:
        if page is not None:
            raise InvalidParameterValue("Can't specify page parameter when pagesize is -1 (Unlimited)")
        return 0, None
    if size is None:
        return 0, max_page_size
    if size > max_page_size:
        raise InvalidParameterValue(f"Page size can't exceed max allowed page size value: {max_page_size}")
    if size <= 0 or page <= 0:
        raise InvalidParameterValue("Page and pagesize must be positive integers")
    return (page - 1) * size, size


def paged(session: Session, stmt: Select, args: dict[str, Any], order_by: Any) -> tuple[list[Any], int]:
    """Run ``stmt`` with CloudStack paging; returns (rows of this page, total count).

    The count costs a second query only when this page cannot tell it: a page that is not
    full (and not past the end) holds the last rows, so the total is known from it.
    """
    offset, limit = page_window(args, max_page_size(session))
    query = stmt.order_by(order_by).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    rows = list(session.scalars(query).unique())
    if (limit is None or len(rows) < limit) and (rows or offset == 0):
        return rows, offset + len(rows)
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    return rows, total


def keyword_filter(stmt: Select, args: dict[str, Any], *columns: Any, param: str = "keyword") -> Select:
    """Rows where any of ``columns`` contains the text of ``param``, literally: ``%`` and ``_``
    in the text match themselves, not any characters."""
    keyword = args.get(param)
    if not keyword:
        return stmt
    from sqlalchemy import or_
    return stmt.where(or_(*(c.contains(keyword, autoescape=True) for c in columns)))


def render_list(rows: list[Any], view: Callable[[Any], dict[str, Any]]) -> list[dict[str, Any]]:
    return [view(r) for r in rows]
