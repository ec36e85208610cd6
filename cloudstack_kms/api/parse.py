"""Turning the raw request parameters into a command's typed, resolved arguments."""
from __future__ import annotations

import re
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from . import declare
from .command import Command
from ..db import cache_of
from ..models import DataCenter
from ..models.volume import DiskOffering
from ..errors import ApiError, invalid_uuid, invalid_value, missing_parameter, too_long
from .listing import check_paging_pair

_MAP_KEY = re.compile(r"^([a-z0-9_]+)\[(\d+)\]\.(.+)$")
_NON_PRINTABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class MalformedParameter(ApiError):
    code = 430


def gather_maps(cmd: type[Command], params: dict[str, str]) -> dict[str, list[dict[str, str]]]:
    """``details[0].key=k&details[0].value=v`` → ``{"details": [{"key": "k", "value": "v"}]}``."""
    map_names = {n for n, f in cmd.param_fields().items() if f.metadata.get("type") == "map"}
    groups: dict[str, dict[int, dict[str, str]]] = {}
    for key, value in params.items():
        if "[" not in key:
            continue
        base = key.split("[", 1)[0]
        if base not in map_names:
            continue
        match = _MAP_KEY.match(key)
        if not match:
            raise MalformedParameter(f"Unable to execute API command {cmd.api_name.lower()} due to "
                                     f"invalid map parameter {key}", cserrorcode=9999)
        groups.setdefault(base, {}).setdefault(int(match.group(2)), {})[match.group(3)] = value
    return {name: [by_index[i] for i in sorted(by_index)] for name, by_index in groups.items()}


def parse_args(cmd: type[Command], params: dict[str, str], session: Session) -> dict[str, Any]:
    """Validate with the command's schema, then resolve uuids of declared entities to rows.

    ``params`` has lower-cased names. Empty values count as not given, as upstream.
    """
    fields = cmd.param_fields()
    api = cmd.api_name
    data: dict[str, Any] = {}
    for name, field in fields.items():
        value = params.get(name)
        if value is None or value == "":
            continue
        if field.metadata.get("type") != "map" and _NON_PRINTABLE.search(value):
            raise ApiError(f"Received value containing illegal ASCII non-printable characters for parameter {name}",
                           code=431)
        data[name] = value
    data.update(gather_maps(cmd, params))
    try:
        loaded = cmd.params_schema().load(data)
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {}
        for name, field in fields.items():
            if name not in messages:
                continue
            tag = messages[name][0] if isinstance(messages[name], list) else str(messages[name])
            if name not in data:
                raise missing_parameter(api, name) from None
            if tag == declare.BAD_UUID:
                raise invalid_uuid(api, name, data[name]) from None
            if tag == declare.TOO_LONG:
                raise too_long(api, name, field.metadata.get("length") or 255) from None
            raise invalid_value(api, name, data[name]) from None
        raise invalid_value(api, next(iter(messages), "?"), "") from None
    if "page" in fields and "pagesize" in fields:
        check_paging_pair(loaded)
    for name, field in fields.items():
        entity = field.metadata.get("entity")
        value = loaded.get(name)
        if entity is None or value is None:
            continue
        if isinstance(value, list):
            loaded[name] = [resolve(session, entity, api, name, v) for v in value]
        else:
            loaded[name] = resolve(session, entity, api, name, value)
    return loaded


_BY_UUID: dict[type, Any] = {}


def _by_uuid(entity: type) -> Any:
    """The live row of ``entity`` with uuid ``:uuid``, as a statement built once per entity (building
    it, and its cache key, cost more than running it)."""
    stmt = _BY_UUID.get(entity)
    if stmt is None:
        stmt = select(entity).where(entity.uuid == bindparam("uuid"))
        if hasattr(entity, "removed"):
            stmt = stmt.where(entity.removed.is_(None))
        stmt = _BY_UUID[entity] = stmt.limit(1)
    return stmt


#: Entities named in nearly every create call that hardly ever change: a found row is kept per
#: process for this long (a change through another server is seen within it; this process's own
#: commits clear it at once). Not-found answers are never kept.
CACHED_ENTITIES: dict[type, float] = {DataCenter: 1.0, DiskOffering: 1.0}


def resolve(session: Session, entity: type, api: str, name: str, value: str) -> Any:
    ttl = CACHED_ENTITIES.get(entity)
    if ttl is not None and (cache := cache_of(session, f"resolve.{entity.__name__}", ttl, (entity,), 1024)):
        row = cache.get_or_load(value, lambda: _load_detached(session, entity, value), keep=_found)
        if row is not None:
            # Attached without a query; a copy, so the cached row is never changed by a request.
            return session.merge(row, load=False)
    else:
        row = session.scalars(_by_uuid(entity), {"uuid": value}).first()
    if row is None:
        raise invalid_uuid(api, name, value)
    return row


def _found(row: Any) -> bool:
    return row is not None


def _load_detached(session: Session, entity: type, value: str) -> Any:
    """The committed row in a short read-only transaction of its own, detached from it."""
    with session.info["database"].transaction(readonly=True) as s:
        return s.scalars(_by_uuid(entity), {"uuid": value}).first()
