"""Driving the real CloudStack web UI in Debian's Chromium with Playwright.

A :class:`UiSession` is one browser tab on a server started with ``--ui-dir``. It records every
``/client/api`` answer and every uncaught page error; :meth:`UiSession.check` (called by the
``ui`` fixture after each test, and by tests between steps) fails on any API answer >= 400 or
page error the test did not announce with :meth:`UiSession.expect_error`.

Screenshots: :meth:`UiSession.shot` saves ``<name>.png`` into ``$KMS_UI_SCREENSHOTS`` when
that is set (``docs/ui/`` is made that way), and does nothing otherwise.
"""
from __future__ import annotations

import os
import shutil
import time
import urllib.parse
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from .server import REPO_ROOT

CHROMIUM = os.environ.get("KMS_CHROMIUM", "/usr/bin/chromium")
UI_DIST = Path(os.environ.get("KMS_UI_DIST") or REPO_ROOT.parent / "shared" / "cloudstack-ui" / "dist")


#: Answers the UI asks for and handles itself, as it does against upstream: with SAML off (as here)
#: the login page's ``listIdps`` gets 401, which the UI ignores by design (an empty IdP list instead
#: would crash its login page).
BENIGN = {("listIdps", 401),
          # With SAML off upstream has no listAndSwitchSamlAccount (432, unknown command); the UI's
          # account switcher catches the error and stays hidden.
          ("listAndSwitchSamlAccount", 432),
          # Root admin only upstream: every other role gets 432 for the UI's start-up check for
          # security groups, which the UI swallows (it then hides security groups).
          ("listNetworkServiceProviders", 432)}


def unavailable() -> str | None:
    """None when the UI can be driven here, else why not."""
    if not (UI_DIST / "index.html").is_file():
        return f"no CloudStack UI build at {UI_DIST} (set KMS_UI_DIST)"
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        return "chromium not found (apt-get install chromium)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "playwright not installed (pip install playwright)"
    return None


@dataclass
class ApiCall:
    command: str
    status: int
    params: dict[str, str]
    text: str

    def json(self) -> Any:
        import json
        return json.loads(self.text)


@dataclass
class UiSession:
    page: Any
    base_url: str
    calls: list[ApiCall] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    _expected: list[tuple[str, int]] = field(default_factory=list)
    _unchecked: int = 0
    _in_flight: int = 0

    def __post_init__(self) -> None:
        self.page.on("request", self._on_request)
        self.page.on("requestfinished", self._on_request_done)
        self.page.on("requestfailed", self._on_request_done)
        self.page.on("response", self._on_response)
        self.page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))

    # -------------------------------------------------------------- network log
    @staticmethod
    def _is_api(url: str) -> bool:
        return "/client/api" in url

    def _on_request(self, request: Any) -> None:
        if self._is_api(request.url):
            self._in_flight += 1

    def _on_request_done(self, request: Any) -> None:
        if self._is_api(request.url):
            self._in_flight = max(0, self._in_flight - 1)

    def _on_response(self, response: Any) -> None:
        if not self._is_api(response.url):
            return
        params = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(response.url).query))
        params.update(urllib.parse.parse_qsl(response.request.post_data or ""))
        params.pop("sessionkey", None)
        params.pop("password", None)
        try:
            text = response.text()
        except Exception:  # noqa: BLE001 - a body the browser dropped
            text = ""
        self.calls.append(ApiCall(params.get("command", ""), response.status, params, text))

    def commands(self) -> list[str]:
        return [c.command for c in self.calls]

    def last(self, command: str) -> ApiCall:
        matching = [c for c in self.calls if c.command == command]
        assert matching, f"the UI never called {command}; it called {sorted(set(self.commands()))}"
        return matching[-1]

    # -------------------------------------------------------------- waiting
    def settle(self, quiet_ms: int = 400, timeout: float = 30.0) -> None:
        """Wait until no API call has been in flight for ``quiet_ms``."""
        deadline = time.monotonic() + timeout
        quiet_since = None
        while time.monotonic() < deadline:
            self.page.wait_for_timeout(100)
            if self._in_flight == 0:
                quiet_since = quiet_since or time.monotonic()
                if (time.monotonic() - quiet_since) * 1000 >= quiet_ms:
                    return
            else:
                quiet_since = None
        raise AssertionError(f"API calls still in flight after {timeout}s")

    def wait_for_call(self, command: str, timeout: float = 30.0) -> ApiCall:
        """The next answer to ``command`` (after those already recorded)."""
        seen = len(self.calls)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for call in self.calls[seen:]:
                if call.command == command:
                    return call
            self.page.wait_for_timeout(100)
        raise AssertionError(f"no {command} call within {timeout}s")

    # -------------------------------------------------------------- navigation
    def open(self, route: str = "/") -> None:
        self.page.goto(f"{self.base_url}/client/#{route}")
        self.settle()

    def login(self, username: str, password: str, domain: str = "") -> None:
        self.page.goto(f"{self.base_url}/client/")
        self.page.wait_for_selector("#form_item_username", timeout=30000)
        self.page.fill("#form_item_username", username)
        self.page.fill("#form_item_password", password)
        if domain:
            self.page.fill("#form_item_domain", domain)
        self.page.click("button.login-button")
        self.page.wait_for_url("**/#/dashboard**", timeout=30000)
        self.settle()

    # -------------------------------------------------------------- checking
    @contextmanager
    def expect_error(self, command: str, status: int) -> Iterator[None]:
        """Announce an API error the next step provokes on purpose."""
        self._expected.append((command, status))
        yield

    def problems(self) -> list[str]:
        found = []
        for call in self.calls[self._unchecked:]:
            if call.status >= 400 and (call.command, call.status) not in BENIGN:
                if (call.command, call.status) in self._expected:
                    self._expected.remove((call.command, call.status))
                    continue
                found.append(f"{call.command} -> {call.status}: {call.text[:300]}")
        return found + [f"page error: {e}" for e in self.page_errors]

    def check(self) -> None:
        """Fail on unexpected API errors and page errors since the last check."""
        problems = self.problems()
        self._unchecked = len(self.calls)
        self.page_errors.clear()
        assert not problems, "the UI hit errors:\n" + "\n".join(problems)

    def shot(self, name: str) -> None:
        target = os.environ.get("KMS_UI_SCREENSHOTS")
        if target:
            Path(target).mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(Path(target) / f"{name}.png"))

    # -------------------------------------------------------------- forms (Ant Design)
    def click_text(self, text: str) -> None:
        self.page.get_by_text(text, exact=True).first.click()

    def fill_field(self, field_id: str, value: str) -> None:
        """An input of a form whose item is named ``field_id`` (Ant Design ids ``form_item_<name>``
        or ``<name>``)."""
        locator = self.page.locator(f"#form_item_{field_id}, #{field_id}").first
        locator.fill(value)

    def choose(self, field_id: str, text: str, search: str | None = None) -> None:
        """Open the Ant Design select of form item ``field_id`` and pick the option showing ``text``.
        ``search`` is typed first: selects that load their options page by page then ask the server
        for that keyword, so an option past the first page can be reached."""
        self.page.locator(".ant-select", has=self.page.locator(f"#form_item_{field_id}")).first.click()
        if search:
            self.page.keyboard.type(search)
        self.page.locator(".ant-select-dropdown:visible .ant-select-item-option", has_text=text).first.click()

    def answer(self, command: str, since: int, timeout: float = 30.0) -> ApiCall:
        """The first answer to ``command`` among the calls recorded from index ``since`` on (take
        ``len(ui.calls)`` before the click that sends it, so a fast answer is not missed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for call in self.calls[since:]:
                if call.command == command:
                    return call
            self.page.wait_for_timeout(100)
        raise AssertionError(f"no {command} call within {timeout}s; the UI called {self.commands()[since:]}")
