"""Logging in through the real UI: the login page, then the dashboard, with no API error."""
from __future__ import annotations


def test_login_page_loads_without_errors(ui):
    ui.page.goto(f"{ui.base_url}/client/")
    ui.page.wait_for_selector("#form_item_username")
    ui.settle()
    assert {"listGuiThemes", "listIdps", "listOauthProvider", "forgotPassword"} <= set(ui.commands())
    assert ui.last("forgotPassword").json() == {"forgotpasswordresponse": {"enabled": False}}
    ui.shot("login")


def test_root_admin_logs_in(ui, kms_env):
    ui.login("admin", kms_env.admin_password)
    login = ui.last("login").json()["loginresponse"]
    assert login["timezoneoffset"] == "0.0" and login["type"] == "1"
    assert ui.page.url.endswith("/#/dashboard")
