"""Keep secrets out of every log line, the HTTP access log included.

GET requests carry parameters such as ``password``, ``details[0].pin`` or ``signature``
in the query string, which WSGI servers log verbatim. A log-record factory rewrites each
message once, at creation, so no handler or logger can forget to redact. Tracebacks too:
an exception's text may quote a request or a profile's details.
"""
from __future__ import annotations

import logging
import re

MASK = "*****"
# Parameter names whose values are never logged: credentials, and every map entry of
# ``details`` (its keys name the secret, its values hold it).
_SENSITIVE_NAME = (r"(?:[\w.\[\]%]*?(?:password|passwd|secret|passphrase|private_key|privatekey|signature|"
                   r"sessionkey|pin)\b[\w.\[\]%]*|details(?:\[|%5b)[^=&\s]*)")
# The lookahead states what any match needs (a run of name characters up to "=", or "details[")
# before the name's alternatives are tried: every access-log line goes through here, and without
# it the engine tried them at each word of the line (three times slower; same matches).
_PAIR = re.compile(r"(?i)(?<![\w])(?=[\w.\[\]%]*=|details(?:\[|%5b))(" + _SENSITIVE_NAME + r")=([^&\s\"']*)")
# JSON, and Python reprs (single quotes) as exception texts show dicts.
_JSON_PAIR = re.compile(r"(?i)(([\"'])(?:password|secretkey|secret_key|pin|passphrase|sessionkey)\2\s*:\s*)"
                        r"([\"'])(?:(?!\3).)*\3")
_FORMATTER = logging.Formatter()
_installed = False


def redact(text: str) -> str:
    text = _PAIR.sub(lambda m: f"{m.group(1)}={MASK}", text)
    return _JSON_PAIR.sub(lambda m: f"{m.group(1)}{m.group(3)}{MASK}{m.group(3)}", text)


def _one_line_database_failure(record: logging.LogRecord) -> bool:
    """A database outage fails every request and every background round: logged with tracebacks it
    buried the log (hundreds in a ten-second restart). Such a record keeps its message plus one
    line naming the failure; any other exception keeps its traceback."""
    from .db import database_failure  # noqa: PLC0415 - logging is set up before anything else
    assert record.exc_info is not None
    reason = database_failure(record.exc_info[1])
    if reason is None:
        return False
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001
        message = str(record.msg)
    record.msg, record.args = f"{redact(message)}: {reason}", None
    record.exc_info, record.exc_text = None, None
    return True


def install_redaction() -> None:
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        record = previous(*args, **kwargs)
        if record.exc_info and _one_line_database_failure(record):
            return record
        if record.exc_info and not record.exc_text:
            # Handlers format tracebacks later, from exc_info, unless exc_text is already set
            # (logging.Formatter.format): set it now, formatted and redacted.
            record.exc_text = redact(_FORMATTER.formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not lose the record
            return record
        redacted = redact(message)
        if redacted != message or record.args:
            record.msg, record.args = redacted, None
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
