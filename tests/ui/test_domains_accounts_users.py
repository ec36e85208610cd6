"""The admin guide's tenancy walk-through in the real UI: the root admin creates a domain, an account in
it and a user in that account, each from its page's form; then that user logs in with the domain
path in the login form's Domain field and lands on its dashboard.

One test per step, in order: each step works on what the previous one made through the UI (kept in
the module's :class:`Walk`). Every step checks what the page shows, what the server now holds (via
the signed admin client), and that the UI met no API error and no page error (``ui.check()``).
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field

import pytest

PASSWORD = "Ui-Passw0rd!"


@dataclass
class Walk:
    """What the steps made: each is filled in by the step that creates it through the UI."""

    token: str = field(default_factory=lambda: secrets.token_hex(3))
    domain: dict | None = None
    account: dict | None = None
    user: dict | None = None

    @property
    def domain_name(self) -> str:
        return f"uidom-{self.token}"

    @property
    def account_name(self) -> str:
        return f"uiacct-{self.token}"

    @property
    def username(self) -> str:
        return f"uiuser-{self.token}"

    def need(self, what: str) -> dict:
        value = getattr(self, what)
        if value is None:
            pytest.fail(f"the earlier step that creates the {what} did not succeed")
        return value


@pytest.fixture(scope="module")
def walk() -> Walk:
    return Walk()


def modal(ui):
    return ui.page.locator(".ant-modal:visible")


def search(ui, text: str, command: str) -> None:
    """The list page's search box: new rows come last (id order), maybe past the first page."""
    since = len(ui.calls)
    box = ui.page.get_by_placeholder("Search").first
    box.fill(text)
    box.press("Enter")
    call = ui.answer(command, since)
    assert call.status == 200 and call.params.get("keyword") == text, call.params
    ui.settle()


def test_admin_creates_a_domain(ui, kms_env, admin, walk):
    ui.login("admin", kms_env.admin_password)
    ui.open("/domain")
    tree = ui.page.locator(".ant-tree")
    tree.get_by_text("ROOT", exact=True).wait_for()
    listed = ui.last("listDomains")
    assert listed.status == 200 and listed.json()["listdomainsresponse"]["domain"][0]["name"] == "ROOT"
    ui.check()

    ui.page.get_by_role("button", name="Add Domain").click()
    ui.fill_field("name", walk.domain_name)
    ui.shot("domain-create")
    since = len(ui.calls)
    modal(ui).get_by_role("button", name="OK").click()
    created = ui.answer("createDomain", since)
    ui.settle()
    assert created.status == 200, created.text
    domain = created.json()["createdomainresponse"]["domain"]
    assert domain["name"] == walk.domain_name and domain["parentdomainname"] == "ROOT"

    # the tree: expanding ROOT asks listDomainChildren and shows the new domain
    since = len(ui.calls)
    tree.locator(".ant-tree-switcher").first.click()
    children = ui.answer("listDomainChildren", since)
    assert children.status == 200
    assert walk.domain_name in [d["name"] for d in children.json()["listdomainchildrenresponse"]["domain"]]
    tree.get_by_text(walk.domain_name, exact=True).wait_for()
    tree.get_by_text(walk.domain_name, exact=True).click()
    ui.settle()
    ui.page.get_by_text(domain["id"], exact=True).first.wait_for()  # its card shows the new domain's id
    ui.shot("domains")
    since = len(ui.calls)
    ui.page.get_by_role("tab", name="Configure limits", exact=True).click()
    limits = ui.answer("listResourceLimits", since)
    assert limits.params["domainid"] == domain["id"]
    assert {r["max"] for r in limits.json()["listresourcelimitsresponse"]["resourcelimit"]} == {-1}
    ui.settle()

    found = admin.ok("listDomains", name=walk.domain_name)["domain"]
    assert [(d["id"], d["level"], d["path"]) for d in found] == [(domain["id"], 1, f"ROOT/{walk.domain_name}")]
    ui.check()
    walk.domain = domain


def test_admin_creates_an_account_in_it(ui, kms_env, admin, walk):
    domain = walk.need("domain")
    ui.login("admin", kms_env.admin_password)
    ui.open("/account")
    ui.page.get_by_role("link", name="admin", exact=True).first.wait_for()
    ui.shot("accounts")
    ui.check()

    since = len(ui.calls)
    ui.page.get_by_role("button", name="Add Account").click()
    roles = ui.answer("listRoles", since)
    assert roles.status == 200
    assert {r["type"] for r in roles.json()["listrolesresponse"]["role"]} == {"Admin", "ResourceAdmin",
                                                                             "DomainAdmin", "User"}
    ui.answer("listDomains", since)
    ui.settle()
    ui.choose("domainid", f"ROOT/{walk.domain_name}", search=walk.domain_name)
    ui.choose("roleid", "User (User)")
    ui.fill_field("username", walk.account_name)
    ui.fill_field("password", PASSWORD)
    ui.fill_field("confirmpassword", PASSWORD)
    ui.fill_field("email", f"{walk.account_name}@example.com")
    ui.fill_field("firstname", "Walk")
    ui.fill_field("lastname", "Account")
    ui.fill_field("account", walk.account_name)
    ui.shot("account-create")
    since = len(ui.calls)
    modal(ui).get_by_role("button", name="OK").click()
    created = ui.answer("createAccount", since)
    ui.settle()
    assert created.status == 200, created.text
    assert created.params["domainid"] == domain["id"]
    search(ui, walk.account_name, "listAccounts")
    ui.page.get_by_role("link", name=walk.account_name, exact=True).first.click()
    ui.settle()
    since = len(ui.calls)
    ui.page.get_by_role("tab", name="Limits", exact=True).click()
    ui.page.get_by_text("Volume limits").first.wait_for()  # from the account's resource counts
    ui.page.get_by_role("tab", name="Configure limits", exact=True).click()
    assert ui.answer("listResourceLimits", since).params["account"] == walk.account_name
    ui.page.get_by_role("tab", name="Certificates", exact=True).click()
    assert ui.answer("listSslCerts", since).status == 200
    ui.settle()

    [account] = admin.ok("listAccounts", name=walk.account_name, domainid=domain["id"])["account"]
    assert account["roletype"] == "User" and account["accounttype"] == 0
    assert account["domainpath"] == f"ROOT/{walk.domain_name}" and account["state"] == "enabled"
    assert [u["username"] for u in account["user"]] == [walk.account_name]
    ui.check()
    walk.account = account


def test_admin_creates_a_user_in_that_account(ui, kms_env, admin, walk):
    domain, account = walk.need("domain"), walk.need("account")
    ui.login("admin", kms_env.admin_password)
    ui.open("/accountuser")
    ui.page.get_by_role("link", name="admin", exact=True).first.wait_for()
    ui.shot("users")
    ui.check()

    ui.page.get_by_role("button", name="Add User").click()
    ui.page.locator("#form_item_username").wait_for()
    ui.settle()
    since = len(ui.calls)
    ui.choose("domainid", f"ROOT/{walk.domain_name}", search=walk.domain_name)
    accounts = ui.answer("listAccounts", since)
    assert accounts.params.get("domainid") == domain["id"]
    ui.settle()
    ui.choose("account", walk.account_name)
    ui.fill_field("username", walk.username)
    ui.fill_field("password", PASSWORD)
    ui.fill_field("confirmpassword", PASSWORD)
    ui.fill_field("email", f"{walk.username}@example.com")
    ui.fill_field("firstname", "Walk")
    ui.fill_field("lastname", "User")
    ui.shot("user-create")
    since = len(ui.calls)
    modal(ui).get_by_role("button", name="OK").click()
    created = ui.answer("createUser", since)
    ui.settle()
    assert created.status == 200, created.text
    user = created.json()["createuserresponse"]["user"]
    assert user["account"] == walk.account_name and user["domainid"] == domain["id"]

    # its page, and the actions the admin guide lists there: disable, then enable again
    search(ui, walk.username, "listUsers")
    ui.page.get_by_role("link", name=walk.username, exact=True).first.click()
    ui.settle()
    ui.page.get_by_text(f"{walk.username}@example.com").first.wait_for()
    since = len(ui.calls)
    ui.page.locator("button:has(span[aria-label='pause-circle'])").first.click()
    modal(ui).get_by_role("button", name="OK").click()
    assert ui.answer("disableUser", since).status == 200
    assert ui.answer("queryAsyncJobResult", since).status == 200
    ui.answer("listUsers", since)
    ui.settle()
    assert admin.ok("listUsers", id=user["id"])["user"][0]["state"] == "disabled"
    since = len(ui.calls)
    ui.page.locator("button:has(span[aria-label='play-circle'])").first.click()
    modal(ui).get_by_role("button", name="OK").click()
    assert ui.answer("enableUser", since).status == 200
    ui.settle()

    [found] = admin.ok("listUsers", username=walk.username, domainid=domain["id"])["user"]
    assert found["id"] == user["id"] and found["state"] == "enabled"
    assert found["accountid"] == account["id"] and found["roletype"] == "User"
    ui.check()
    walk.user = found


def test_the_new_user_logs_in_with_its_domain(ui, admin, walk):
    domain, user = walk.need("domain"), walk.need("user")
    ui.login(walk.username, PASSWORD, domain=f"/{walk.domain_name}")
    login = ui.last("login")
    assert login.params["domain"] == f"/{walk.domain_name}"
    body = login.json()["loginresponse"]
    assert (body["userid"], body["domainid"], body["account"], body["type"]) == \
        (user["id"], domain["id"], walk.account_name, "0")
    me = ui.last("listUsers").json()["listusersresponse"]["user"][0]
    assert me["id"] == user["id"] and me["roletype"] == "User"
    assert ui.page.url.endswith("/#/dashboard")
    ui.page.get_by_text("Walk User").first.wait_for()  # the header names the logged-in user
    ui.shot("user-login")
    # the server recorded the login of that user
    events = admin.ok("listEvents", type="USER.LOGIN", account=walk.account_name, domainid=domain["id"])["event"]
    assert [e["username"] for e in events] == [walk.username]
    ui.check()
