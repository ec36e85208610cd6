"""Fixtures for the browser tests: a server that also serves the CloudStack UI build, one
Chromium for the run, and a fresh tab (:class:`~tests.support.browser.UiSession`) per test.

The browser tests get a database of their own (``kms_env``, ``server`` and the admin keys are
overridden here): the UI shows lists a page at a time, so rows left by the other test modules
would push what a step just made off the first page.
"""
from __future__ import annotations

import os

import pytest

from tests.support.browser import CHROMIUM, UI_DIST, UiSession, unavailable
from tests.support.server import ServerProcess


@pytest.fixture(scope="session")
def kms_env(env_factory):
    return env_factory("ui")


@pytest.fixture(scope="session")
def server(kms_env):
    """The signed-API server of the browser tests' database (tests check the state through it)."""
    proc = ServerProcess(kms_env).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def admin_keys(kms_env) -> dict[str, str]:
    return kms_env.admin_keys()


@pytest.fixture(scope="session")
def ui_server(kms_env):
    """A second server on the browser tests' database, with ``--ui-dir``."""
    reason = unavailable()
    if reason:
        if os.environ.get("KMS_REQUIRE_UI", "0") not in ("", "0") or os.environ.get("CI"):
            pytest.fail(f"the browser tests cannot run: {reason}")
        pytest.skip(reason)
    proc = ServerProcess(kms_env, ui_dir=UI_DIST).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def chromium(ui_server):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture()
def ui(chromium, ui_server, request):
    """A new browser context (own cookies and storage); after the test, no unexpected API error
    or page error may be left."""
    context = chromium.new_context(viewport={"width": 1440, "height": 900}, locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(30000)
    session = UiSession(page, ui_server.base_url)
    yield session
    try:
        if not getattr(request.node, "rep_call", None) or request.node.rep_call.passed:
            session.check()
    finally:
        context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
