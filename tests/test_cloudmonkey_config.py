"""``tools/cloudmonkey-config`` in the layout the Go cmk reads (its config/config.go, via go-ini):
core settings in the default section at the top of the file, before any ``[section]``; the server
profile in the section that ``profile`` names, with the ServerProfile keys.
"""
from __future__ import annotations

import re
from pathlib import Path

CONFIG = Path(__file__).resolve().parent.parent / "tools" / "cloudmonkey-config"
CORE_KEYS = {"prompt", "asyncblock", "timeout", "output", "verifycert", "profile", "autocomplete"}
PROFILE_KEYS = {"url", "username", "password", "domain", "apikey", "secretkey"}


def sections(text: str) -> dict[str, dict[str, str]]:
    """go-ini's reading: keys before the first header belong to the default section ``""``."""
    parsed: dict[str, dict[str, str]] = {"": {}}
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        header = re.fullmatch(r"\[(.+)\]", line)
        if header:
            current = header.group(1).strip()
            parsed.setdefault(current, {})
            continue
        key, sep, value = line.partition("=")
        assert sep, f"not a key = value line: {raw!r}"
        parsed[current][key.strip()] = value.strip()
    return parsed


def test_core_settings_come_first():
    parsed = sections(CONFIG.read_text(encoding="utf-8"))
    assert "core" not in parsed  # cmk has no [core] section: settings there would be ignored
    core = parsed[""]
    assert set(core) == CORE_KEYS
    assert core["asyncblock"] in ("true", "false") and core["verifycert"] in ("true", "false")
    assert int(core["timeout"]) > 0 and core["output"] == "json"


def test_the_profile_section_is_the_one_named_and_holds_only_profile_keys():
    parsed = sections(CONFIG.read_text(encoding="utf-8"))
    profile = parsed[parsed[""]["profile"]]
    assert set(profile) == PROFILE_KEYS
    assert re.fullmatch(r"https?://[^/]+/client/api", profile["url"])
    assert profile["domain"] == "/"
    assert set(parsed) == {"", parsed[""]["profile"]}
