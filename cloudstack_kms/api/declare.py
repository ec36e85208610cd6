"""Building blocks for command declarations: parameter fields and response fields.

A parameter is a marshmallow field whose ``metadata`` carries what ``listApis`` shows
(``description``, ``type``, ``length``, ``since``, ``related``) and what the dispatcher
needs (``entity`` to resolve a uuid to a row, ``sensitive`` to keep a value out of logs
and job rows). The same declaration validates the request, documents the command and
drives redaction, so the three can never disagree.

Parsing follows CloudStack: booleans are ``true`` in any case, lists are comma separated,
maps arrive as ``name[i].key=value``; the text of each failure is formatted by the
dispatcher from the tag the field raises.
"""
from __future__ import annotations

import re
import uuid as uuid_mod
from datetime import datetime, timezone
from typing import Any

from marshmallow import Schema, ValidationError, fields

from ..wire import format_date

UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

# Tags raised by fields and turned into CloudStack texts by the dispatcher.
BAD_VALUE = "invalid-value"
BAD_UUID = "invalid-uuid"
TOO_LONG = "too-long"


def _meta(cstype: str, description: str, *, length: int = 255, since: str | None = None,
          related: str | None = None, entity: type | None = None, sensitive: bool = False,
          choices: tuple[str, ...] | None = None) -> dict[str, Any]:
    return {"type": cstype, "description": description, "length": length, "since": since,
            "related": related, "entity": entity, "sensitive": sensitive, "choices": choices}


class _CSField(fields.Field):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, str):
            value = str(value)
        length = self.metadata.get("length") or 255
        if self.metadata["type"] in ("string", "list", "uuid") and len(value) > length:
            raise ValidationError(TOO_LONG)
        return self._parse(value)

    def _parse(self, value: str) -> Any:
        return value

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return value


class CSString(_CSField):
    def _parse(self, value: str) -> Any:
        choices = self.metadata.get("choices")
        if choices and value.lower() not in {c.lower() for c in choices}:
            raise ValidationError(BAD_VALUE)
        return value


class CSBoolean(_CSField):
    def _parse(self, value: str) -> bool:
        return value.strip().lower() == "true"


class CSInteger(_CSField):
    bits = 32

    def _parse(self, value: str) -> int:
        try:
            number = int(value.strip())
        except ValueError:
            raise ValidationError(BAD_VALUE) from None
        if not -(2 ** (self.bits - 1)) <= number < 2 ** (self.bits - 1):
            raise ValidationError(BAD_VALUE)
        return number


class CSLong(CSInteger):
    bits = 64


class CSUuid(_CSField):
    """A uuid; ``entity`` makes the dispatcher resolve it to a live row (or 431)."""

    def _parse(self, value: str) -> str:
        value = value.strip()
        if not UUID_RE.match(value):
            raise ValidationError(BAD_UUID)
        return value.lower()


class CSDate(_CSField):
    FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S")

    def _parse(self, value: str) -> datetime:
        for fmt in self.FORMATS:
            try:
                parsed = datetime.strptime(value.strip(), fmt)
            except ValueError:
                continue
            if parsed.tzinfo is not None:
                parsed = parsed.astimezone(timezone.utc).replace(tzinfo=None)
            return parsed
        raise ValidationError(BAD_VALUE)


class CSList(_CSField):
    """Comma-separated values, each parsed by ``item`` (a uuid list checks each uuid)."""

    def __init__(self, item: _CSField, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.item = item

    def _parse(self, value: str) -> list[Any]:
        return [self.item._parse(v.strip()) for v in value.split(",") if v.strip()]


class CSMap(_CSField):
    """``name[i].k=v`` groups, gathered by the dispatcher into a list of dicts, by index."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, list):
            raise ValidationError(BAD_VALUE)
        return value


# ------------------------------------------------------------------ parameter factories
def string(description: str, *, required: bool = False, length: int = 255, **kw: Any) -> fields.Field:
    return CSString(required=required, metadata=_meta("string", description, length=length, **kw))


def boolean(description: str, *, required: bool = False, **kw: Any) -> fields.Field:
    return CSBoolean(required=required, metadata=_meta("boolean", description, **kw))


def integer(description: str, *, required: bool = False, **kw: Any) -> fields.Field:
    return CSInteger(required=required, metadata=_meta("integer", description, **kw))


def long(description: str, *, required: bool = False, **kw: Any) -> fields.Field:
    return CSLong(required=required, metadata=_meta("long", description, **kw))


def uuid(description: str, *, required: bool = False, entity: type | None = None, **kw: Any) -> fields.Field:
    return CSUuid(required=required, metadata=_meta("uuid", description, entity=entity, **kw))


def date(description: str, *, required: bool = False, **kw: Any) -> fields.Field:
    return CSDate(required=required, metadata=_meta("date", description, **kw))


def uuid_list(description: str, *, required: bool = False, entity: type | None = None, **kw: Any) -> fields.Field:
    return CSList(CSUuid(metadata=_meta("uuid", description)), required=required,
                  metadata=_meta("list", description, entity=entity, length=kw.pop("length", 8192), **kw))


def string_list(description: str, *, required: bool = False, **kw: Any) -> fields.Field:
    return CSList(CSString(metadata=_meta("string", description)), required=required,
                  metadata=_meta("list", description, **kw))


def map_(description: str, *, required: bool = False, **kw: Any) -> fields.Field:
    return CSMap(required=required, metadata=_meta("map", description, **kw))


def map_pairs(groups: list[dict[str, str]]) -> dict[str, str]:
    """Read a map parameter sent in either CloudStack form.

    ``details[0].key=K&details[0].value=V`` and ``details[0].K=V`` both give ``{K: V}``.
    """
    result: dict[str, str] = {}
    for group in groups:
        if set(group) == {"key", "value"}:
            result[group["key"]] = group["value"]
        else:
            for k, v in group.items():
                result[k] = v
    return result


def is_uuid(value: str) -> bool:
    return bool(UUID_RE.match(value or ""))


def new_uuid() -> str:
    return str(uuid_mod.uuid4())


# ------------------------------------------------------------------ response fields
def _rmeta(cstype: str, description: str, roles: frozenset[str] | None) -> dict[str, Any]:
    return {"type": cstype, "description": description, "roles": roles}


class DateField(fields.Field):
    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, str):
            return value
        return format_date(value)


class Out:
    """Response-field factories. ``roles`` limits who sees a field (None: everybody)."""

    @staticmethod
    def string(description: str, roles: frozenset[str] | None = None) -> fields.Field:
        return fields.Raw(metadata=_rmeta("string", description, roles))

    @staticmethod
    def uuid(description: str, roles: frozenset[str] | None = None) -> fields.Field:
        return fields.Raw(metadata=_rmeta("string", description, roles))

    @staticmethod
    def boolean(description: str, roles: frozenset[str] | None = None) -> fields.Field:
        return fields.Raw(metadata=_rmeta("boolean", description, roles))

    @staticmethod
    def integer(description: str, roles: frozenset[str] | None = None) -> fields.Field:
        return fields.Raw(metadata=_rmeta("integer", description, roles))

    @staticmethod
    def long(description: str, roles: frozenset[str] | None = None) -> fields.Field:
        return fields.Raw(metadata=_rmeta("long", description, roles))

    @staticmethod
    def date(description: str, roles: frozenset[str] | None = None) -> fields.Field:
        return DateField(metadata=_rmeta("date", description, roles))

    @staticmethod
    def map(description: str, roles: frozenset[str] | None = None) -> fields.Field:
        return fields.Raw(metadata=_rmeta("map", description, roles))

    @staticmethod
    def list(description: str, nested: type[Schema] | None = None, roles: frozenset[str] | None = None) -> fields.Field:
        if nested is not None:
            return fields.List(fields.Nested(nested), metadata=_rmeta("list", description, roles))
        return fields.Raw(metadata=_rmeta("list", description, roles))


class ResponseObject(Schema):
    """A response object declaration: ``object_name`` plus one field per key.

    Dumping drops undeclared keys and null values, as CloudStack leaves nulls out.
    """

    object_name: str = ""

    @classmethod
    def render(cls, data: dict[str, Any], role: str | None = None) -> dict[str, Any]:
        """``data`` restricted to the declared fields, in declaration order, without nulls and
        without the fields ``role`` may not see."""
        return _render(cls, data, role, filter_roles=True)


# A field's conversion when rendered: None (the value as it is), a date, or a list of nested objects.
_Plan = list[tuple[str, "frozenset[str] | None", Any]]
_plans: dict[type, _Plan] = {}


def _render_plan(cls: type[Schema]) -> _Plan:
    """What rendering does per field, worked out once per class from its declaration.

    Rendering runs for every item of every list answer: going through marshmallow's ``dump``
    built a schema (a deep copy of every field) per item, several times the cost of the rest.
    """
    plan = _plans.get(cls)
    if plan is None:
        plan = []
        for name, field in cls._declared_fields.items():
            convert: Any = None
            if isinstance(field, DateField):
                convert = _date_value
            elif isinstance(field, fields.List) and isinstance(field.inner, fields.Nested):
                nested = field.inner.nested
                convert = (lambda items, nested=nested:
                           [_render(nested, item, None, filter_roles=False) for item in items])
            elif type(field) is not fields.Raw:
                raise TypeError(f"{cls.__name__}.{name}: response fields are declared with Out")
            plan.append((name, field.metadata.get("roles"), convert))
        _plans[cls] = plan
    return plan


def _date_value(value: Any) -> Any:
    return value if isinstance(value, str) else format_date(value)


def _render(cls: type[Schema], data: dict[str, Any], role: str | None, filter_roles: bool) -> dict[str, Any]:
    result = {}
    for name, roles, convert in _render_plan(cls):
        value = data.get(name)
        if value is None or (filter_roles and roles is not None and role not in roles):
            continue
        result[name] = value if convert is None else convert(value)
    return result
