"""Turning results and errors into CloudStack's JSON and XML envelopes."""
from __future__ import annotations

import json
from typing import Any
from xml.sax.saxutils import escape

import orjson
from flask import Response

from .command import FlatResult, ListResult, ObjectResult, Result, SuccessResult
from ..errors import ApiError

CLOUDSTACK_VERSION = "4.23.0"
JSON_TYPE = "application/json; charset=UTF-8"
XML_TYPE = "text/xml; charset=UTF-8"
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-XSS-Protection": "1;mode=block",
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; connect-src 'self'; img-src 'self'; style-src 'self';",
}


def prune(value: Any) -> Any:
    """Drop null fields at every depth, as CloudStack's serializer does."""
    if isinstance(value, dict):
        return {k: prune(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [prune(v) for v in value]
    return value


def result_body(result: Result, role: str | None) -> dict[str, Any]:
    """The inner object under the response name."""
    if isinstance(result, ObjectResult):
        return {result.response.object_name: prune(result.response.render(result.data, role))}
    if isinstance(result, ListResult):
        # As upstream: "count" only when non-zero, the array only when this page has items
        # (a page past the end is {"count": N}, which stops cs's page loop).
        body = {}
        if result.count:
            body["count"] = result.count
        if result.items:
            body[result.response.object_name] = [prune(result.response.render(i, role)) for i in result.items]
        return body
    if isinstance(result, SuccessResult):
        body: dict[str, Any] = {"success": True}
        if result.displaytext:
            body["displaytext"] = result.displaytext
        return body
    if isinstance(result, FlatResult):
        return prune(result.data)
    raise TypeError(f"unknown result {type(result).__name__}")


def error_body(err: ApiError) -> dict[str, Any]:
    body: dict[str, Any] = {"uuidList": [], "errorcode": err.code}
    if err.cserrorcode is not None:
        body["cserrorcode"] = err.cserrorcode
    body["errortext"] = err.text
    return body


def to_json(document: dict[str, Any]) -> bytes:
    """One line of raw UTF-8 (Marvin reads only the first line of listApis). orjson is several
    times faster than the standard module; it refuses what JSON numbers in other clients could
    not hold anyway (integers beyond 64 bits), for which the standard module still answers."""
    try:
        return orjson.dumps(document)
    except TypeError:
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def respond(name: str, body: dict[str, Any], fmt: str, status: int = 200,
            headers: dict[str, str] | None = None) -> Response:
    if fmt == "json":
        payload = to_json({name: body})
        resp = Response(payload, status=status, content_type=JSON_TYPE)
    else:
        resp = Response(to_xml(name, body), status=status, content_type=XML_TYPE)
    resp.headers.update(SECURITY_HEADERS)
    if headers:
        resp.headers.update(headers)
    return resp


def respond_error(name: str, err: ApiError, fmt: str) -> Response:
    headers = {}
    if err.cserrorcode is not None:
        # The web UI and Python CloudMonkey read the text from this header.
        headers["X-Description"] = header_text(err.text)
    return respond(name, error_body(err), fmt, err.code, headers)


MAX_HEADER_TEXT = 2048


def header_text(text: str) -> str:
    """``text`` made safe for a header: one line, ISO-8859-1 (as servlet containers write
    headers; other characters become ``?``), and short: an error can quote a huge value,
    and clients refuse header lines over 64 KiB."""
    if len(text) > MAX_HEADER_TEXT:
        text = text[:MAX_HEADER_TEXT - 3] + "..."
    text = "".join(" " if ch < " " or ch == "\x7f" else ch for ch in text)
    return text.encode("latin-1", "replace").decode("latin-1")


# ------------------------------------------------------------------ XML
def _xml_value(key: str, value: Any) -> str:
    if isinstance(value, dict):
        return f"<{key}>" + "".join(_xml_value(k, v) for k, v in value.items()) + f"</{key}>"
    if isinstance(value, list):
        return "".join(_xml_value(key, v) for v in value)
    if isinstance(value, bool):
        value = "true" if value else "false"
    return f"<{key}>{escape(str(value))}</{key}>"


def to_xml(name: str, body: dict[str, Any]) -> str:
    inner = "".join(_xml_value(k, v) for k, v in body.items() if k != "uuidList" or v)
    return (f'<?xml version="1.0" encoding="UTF-8"?><{name} cloud-stack-version="{CLOUDSTACK_VERSION}">'
            f"{inner}</{name}>")
