"""Login sessions and request signatures, on the wire (api-conventions.md §2 and §3)."""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import pytest
import requests

from tests.support.client import Client
from tests.support.dbtools import set_user_state
from tests.support.tenants import PASSWORD, new_account

VERIFY_TEXT = "unable to verify user credentials and/or request signature"
SESSION_TEXT = "unable to verify user credentials"


# ------------------------------------------------------------------ helpers
def java_encode(value: str) -> str:
    """``URLEncoder.encode(v, "UTF-8")`` with ``+`` turned into ``%20``: what the Java server signs."""
    return quote(value, safe=".-*_").replace("~", "%7E")


def signed(params: dict[str, str], secret: str, *, encode=java_encode, key_order=None,
           lower_keys: bool = False) -> dict[str, str]:
    """``params`` plus a signature built the way a given client builds it."""
    items = sorted(params.items(), key=key_order or (lambda kv: kv[0]))
    text = "&".join(f"{k.lower() if lower_keys else k}={encode(v)}" for k, v in items).lower()
    digest = hmac.new(secret.encode(), text.encode(), hashlib.sha1).digest()
    return {**params, "signature": base64.b64encode(digest).decode()}


def cookie_headers(resp: requests.Response) -> dict[str, str]:
    """Each Set-Cookie header by cookie name."""
    headers = resp.raw.headers.getlist("Set-Cookie")
    return {h.split("=", 1)[0]: h for h in headers}


def login(url: str, username: str, password: str, http: requests.Session | None = None, **extra) -> requests.Response:
    http = http or requests.Session()
    return http.post(url, data={"command": "login", "username": username, "password": password,
                                "domain": "/", "response": "json", **extra}, timeout=30)


class Tenant:
    """A plain user made with createAccount: its names, password, keys and a signed client."""

    def __init__(self, admin: Client) -> None:
        account, self.client = new_account(admin)
        user = account["user"][0]
        self.account, self.username, self.password = account["name"], user["username"], PASSWORD
        self.user_uuid = user["id"]
        self.apikey, self.secretkey = self.client.apikey, self.client.secret


@pytest.fixture(scope="module")
def tenant(server, admin_keys):
    return Tenant(Client(server.url, admin_keys["apikey"], admin_keys["secretkey"]))


def future(minutes: int = 5) -> str:
    return (datetime.now(timezone.utc) + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S+0000")


# ------------------------------------------------------------------ login
def test_login_requires_post(server, kms_env):
    resp = requests.get(server.url, params={"command": "login", "username": "admin",
                                            "password": kms_env.admin_password, "response": "json"}, timeout=30)
    assert resp.status_code == 405
    assert resp.headers["Content-Type"].startswith("text/plain")
    assert resp.text == "Please use HTTP POST to authenticate using this API"
    assert "Set-Cookie" not in resp.headers


def test_login_response_and_cookies(server, kms_env):
    resp = login(server.url, "admin", kms_env.admin_password)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].startswith("application/json")
    body = resp.json()
    assert list(body) == ["loginresponse"]
    inner = body["loginresponse"]
    assert inner["username"] == "admin"
    assert inner["account"] == "admin"
    assert inner["type"] == "1"
    assert inner["is2faenabled"] == "false"
    assert inner["registered"] == "false"
    assert isinstance(inner["timeout"], int) and inner["timeout"] > 0
    assert isinstance(inner["sessionkey"], str) and len(inner["sessionkey"]) >= 20
    assert "=" not in inner["sessionkey"]  # URL-safe Base64 without padding
    for field in ("userid", "domainid"):
        assert isinstance(inner[field], str) and len(inner[field]) == 36
    assert None not in inner.values()  # nulls are left out, never sent
    assert "timezone" not in inner  # the admin has no time zone

    cookies = cookie_headers(resp)
    assert set(cookies) >= {"JSESSIONID", "sessionkey"}
    for name in ("JSESSIONID", "sessionkey"):
        attrs = [a.strip().lower() for a in cookies[name].split(";")]
        assert "httponly" in attrs, cookies[name]
        assert "path=/client" in attrs, cookies[name]
    assert cookies["sessionkey"].startswith(f"sessionkey={inner['sessionkey']};")


def test_login_with_query_string_parameters(server, kms_env):
    """Python CloudMonkey posts with every parameter in the query string and an empty body."""
    resp = requests.post(server.url, params={"command": "login", "username": "admin",
                                             "password": kms_env.admin_password, "response": "json"}, timeout=30)
    assert resp.status_code == 200, resp.text
    assert resp.json()["loginresponse"]["sessionkey"]


def test_session_key_parameter_with_or_without_cookie(server, kms_env):
    http = requests.Session()
    key = login(server.url, "admin", kms_env.admin_password, http).json()["loginresponse"]["sessionkey"]
    query = {"command": "listZones", "response": "json"}

    both = http.get(server.url, params={**query, "sessionkey": key}, timeout=30)
    assert both.status_code == 200, both.text
    assert "zone1" in {z["name"] for z in both.json()["listzonesresponse"]["zone"]}

    param_only = requests.get(server.url, params={**query, "sessionkey": key}, timeout=30)
    assert param_only.status_code == 200, param_only.text

    post_form = requests.post(server.url, data={**query, "sessionkey": key}, timeout=30)
    assert post_form.status_code == 200, post_form.text


def test_cookie_alone_authorises_nothing(server, kms_env):
    """CSRF: a cross-site request carries the browser's cookies but cannot know the session key."""
    http = requests.Session()
    key = login(server.url, "admin", kms_env.admin_password, http).json()["loginresponse"]["sessionkey"]
    name = f"csrf-{secrets.token_hex(4)}"
    for method in ("GET", "POST"):
        forged = http.request(method, server.url, params={"command": "createDomain", "name": name,
                                                          "response": "json"}, timeout=30)
        assert forged.status_code == 401, forged.text
        assert forged.json()["createdomainresponse"]["errortext"] == SESSION_TEXT
    reads = http.get(server.url, params={"command": "listZones", "response": "json"}, timeout=30)
    assert reads.status_code == 401
    # nothing was created, and the session itself still works with its key
    listed = http.get(server.url, params={"command": "listDomains", "name": name, "listall": "true",
                                          "response": "json", "sessionkey": key}, timeout=30)
    assert listed.status_code == 200 and "domain" not in listed.json()["listdomainsresponse"]
    # a cross-site logout by cookie alone does not end the session either
    http.get(server.url, params={"command": "logout", "response": "json"}, timeout=30)
    still = requests.get(server.url, params={"command": "listZones", "response": "json", "sessionkey": key},
                         timeout=30)
    assert still.status_code == 200, still.text


def test_session_cookies_are_httponly_and_samesite(server, kms_env):
    resp = login(server.url, "admin", kms_env.admin_password)
    for name, header in cookie_headers(resp).items():
        attrs = [a.strip().lower() for a in header.split(";")]
        assert "httponly" in attrs and "samesite=lax" in attrs, header
        assert "secure" not in attrs, header  # plain HTTP here and no --secure-cookies


def test_session_key_mismatch_refused(server, kms_env):
    http = requests.Session()
    key = login(server.url, "admin", kms_env.admin_password, http).json()["loginresponse"]["sessionkey"]
    other = login(server.url, "admin", kms_env.admin_password).json()["loginresponse"]["sessionkey"]
    assert key != other
    # the cookie holds one live session, the parameter another
    resp = http.get(server.url, params={"command": "listZones", "response": "json", "sessionkey": other},
                    timeout=30)
    assert resp.status_code == 401
    assert resp.json() == {"listzonesresponse": {"uuidList": [], "errorcode": 401, "errortext": SESSION_TEXT}}


def test_unknown_session_key_refused(server):
    resp = requests.get(server.url, params={"command": "listZones", "response": "json",
                                            "sessionkey": "no-such-session-key-000000"}, timeout=30)
    assert resp.status_code == 401
    assert resp.json()["listzonesresponse"]["errortext"] == SESSION_TEXT
    assert "cserrorcode" not in resp.json()["listzonesresponse"]


def test_no_credentials_refused(server):
    resp = requests.get(server.url, params={"command": "listZones", "response": "json"}, timeout=30)
    assert resp.status_code == 401
    assert resp.json() == {"listzonesresponse": {"uuidList": [], "errorcode": 401, "errortext": VERIFY_TEXT}}


def test_wrong_password(server, kms_env):
    resp = login(server.url, "admin", kms_env.admin_password + "x")
    assert resp.status_code == 531
    assert resp.headers["Content-Type"].startswith("application/json")
    inner = resp.json()["loginresponse"]
    assert inner["errorcode"] == 531
    assert "cserrorcode" not in inner
    assert inner["errortext"].startswith("Failed to authenticate user admin in domain ")
    assert "sessionkey" not in cookie_headers(resp)


def test_unknown_user_and_unknown_domain(server, kms_env):
    assert login(server.url, "nobody-here", "x").status_code == 531
    resp = login(server.url, "admin", kms_env.admin_password, domain="/nowhere/")
    assert resp.status_code == 531
    assert resp.json()["loginresponse"]["errortext"] == "Unable to find the domain from the path /nowhere/"


def test_login_of_a_user_account(server, tenant):
    resp = login(server.url, tenant.username, tenant.password)
    assert resp.status_code == 200, resp.text
    inner = resp.json()["loginresponse"]
    assert inner["type"] == "0"
    assert inner["userid"] == tenant.user_uuid


def test_login_again_ends_the_previous_session(server, kms_env):
    http = requests.Session()
    first = login(server.url, "admin", kms_env.admin_password, http).json()["loginresponse"]["sessionkey"]
    second = login(server.url, "admin", kms_env.admin_password, http).json()["loginresponse"]["sessionkey"]
    assert first != second
    query = {"command": "listZones", "response": "json"}
    assert requests.get(server.url, params={**query, "sessionkey": first}, timeout=30).status_code == 401
    assert http.get(server.url, params={**query, "sessionkey": second}, timeout=30).status_code == 200


def test_login_by_domain_id(server, kms_env):
    ok = login(server.url, "admin", kms_env.admin_password, domainId="1")
    assert ok.status_code == 200, ok.text
    root = ok.json()["loginresponse"]["domainid"]
    assert login(server.url, "admin", kms_env.admin_password, domainid=root, domain="/ignored/").status_code == 200
    bad = login(server.url, "admin", kms_env.admin_password, domainid="6d0e0b3e-0000-4000-8000-000000000000")
    assert bad.status_code == 401
    assert bad.json() == {"loginresponse": {"uuidList": [], "errorcode": 401,
                                            "errortext": "Invalid domain id entered, please enter a valid one"}}


def test_logout_ends_the_session(server, kms_env):
    http = requests.Session()
    key = login(server.url, "admin", kms_env.admin_password, http).json()["loginresponse"]["sessionkey"]
    query = {"command": "listZones", "response": "json", "sessionkey": key}
    assert http.get(server.url, params=query, timeout=30).status_code == 200
    out = http.post(server.url, data={"command": "logout", "response": "json", "sessionkey": key}, timeout=30)
    assert out.status_code == 200
    assert out.json() == {"logoutresponse": {"description": "success"}}
    cleared = cookie_headers(out)
    assert "sessionkey" in cleared and "max-age=0" in cleared["sessionkey"].lower()
    after = requests.get(server.url, params=query, timeout=30)
    assert after.status_code == 401
    assert after.json()["listzonesresponse"]["errortext"] == SESSION_TEXT


def test_logout_without_session(server):
    resp = requests.get(server.url, params={"command": "logout", "response": "json"}, timeout=30)
    assert resp.status_code == 200
    assert resp.json() == {"logoutresponse": {"description": "success"}}


# ------------------------------------------------------------------ signatures
def call(server, params):
    return requests.get(server.url, params=params, timeout=30)


def base_params(keys, **extra) -> dict[str, str]:
    return {"command": "listZones", "response": "json", "apiKey": keys["apikey"], **extra}


def test_signature_v1_without_expires(server, admin_keys):
    resp = call(server, signed(base_params(admin_keys), admin_keys["secretkey"]))
    assert resp.status_code == 200, resp.text


def test_signature_v3(server, admin_keys):
    params = base_params(admin_keys, signatureversion="3", expires=future())
    assert call(server, signed(params, admin_keys["secretkey"])).status_code == 200
    # the camelCase name counts too (cs sends signatureVersion)
    params = base_params(admin_keys, signatureVersion="3", expires=future())
    assert call(server, signed(params, admin_keys["secretkey"])).status_code == 200


@pytest.mark.parametrize("expires", [None, "", "tomorrow", "2020-01-01T00:00:00+0000"])
def test_signature_v3_bad_expires(server, admin_keys, expires):
    params = base_params(admin_keys, signatureversion="3")
    if expires is not None:
        params["expires"] = expires
    resp = call(server, signed(params, admin_keys["secretkey"]))
    assert resp.status_code == 401
    assert resp.json()["listzonesresponse"] == {"uuidList": [], "errorcode": 401, "errortext": VERIFY_TEXT}


def test_expires_without_v3_is_not_checked(server, admin_keys):
    params = base_params(admin_keys, expires="2020-01-01T00:00:00+0000")
    assert call(server, signed(params, admin_keys["secretkey"])).status_code == 200


def test_java_exact_encoding_of_tilde(server, admin_keys):
    """The exact Java form encodes ``~`` as ``%7E``; a client that does so must be accepted."""
    params = base_params(admin_keys, keyword="a~b c")
    resp = call(server, signed(params, admin_keys["secretkey"]))
    assert resp.status_code == 200, resp.text


def test_tolerated_raw_tilde(server, admin_keys):
    """Go cmk, cs, libcloud and Marvin leave ``~`` raw."""
    params = base_params(admin_keys, keyword="a~b")
    resp = call(server, signed(params, admin_keys["secretkey"], encode=lambda v: quote(v, safe="~.-*_")))
    assert resp.status_code == 200, resp.text


def test_tolerated_keys_sorted_lower_cased(server, admin_keys):
    """Python CloudMonkey, libcloud and Marvin sort keys after lower-casing them."""
    params = base_params(admin_keys, Keyword="zone1")
    # case-sensitive order puts "Keyword" first; lower-cased order puts it after "command"
    lower_order = signed(params, admin_keys["secretkey"], key_order=lambda kv: kv[0].lower(), lower_keys=True)
    exact = signed(params, admin_keys["secretkey"])
    assert lower_order["signature"] != exact["signature"]
    for variant in (lower_order, exact):
        resp = call(server, variant)
        assert resp.status_code == 200, resp.text
        assert resp.json()["listzonesresponse"]["count"] == 1


def test_tolerated_raw_brackets_in_values(server, admin_keys):
    params = base_params(admin_keys, keyword="[x]")
    resp = call(server, signed(params, admin_keys["secretkey"], encode=lambda v: quote(v, safe="[]*")))
    assert resp.status_code == 200, resp.text


def test_other_variants_refused(server, admin_keys):
    """Tolerance stops at the documented variants: e.g. ``+`` for a space is not accepted."""
    params = base_params(admin_keys, keyword="a b")
    resp = call(server, signed(params, admin_keys["secretkey"], encode=lambda v: quote(v, safe="").replace("%20", "+")))
    assert resp.status_code == 401


def test_signature_over_post_form_and_query_mixed(server, admin_keys):
    """Parameters in the query string and the form body are signed together."""
    params = signed(base_params(admin_keys, keyword="zone1"), admin_keys["secretkey"])
    query = {k: params[k] for k in ("command", "signature")}
    form = {k: v for k, v in params.items() if k not in query}
    resp = requests.post(server.url, params=query, data=form, timeout=30)
    assert resp.status_code == 200, resp.text
    assert resp.json()["listzonesresponse"]["count"] == 1


def test_missing_signature_or_key(server, admin_keys):
    params = base_params(admin_keys)
    assert call(server, params).status_code == 401  # no signature
    no_key = signed({"command": "listZones", "response": "json"}, admin_keys["secretkey"])
    assert call(server, no_key).status_code == 401


def test_unknown_api_key(server, admin_keys):
    params = signed(base_params({"apikey": "no-such-key"}), admin_keys["secretkey"])
    resp = call(server, params)
    assert resp.status_code == 401
    assert resp.json()["listzonesresponse"]["errortext"] == VERIFY_TEXT


def test_disabled_user_key_refused(kms_env, server, admin):
    tenant = Tenant(admin)
    client = Client(server.url, tenant.apikey, tenant.secretkey)
    assert client.request("listZones").status == 200
    set_user_state(kms_env, tenant.user_uuid, "disabled")
    try:
        reply = client.request("listZones")
        assert reply.status == 401
        assert reply.inner() == {"uuidList": [], "errorcode": 401, "errortext": VERIFY_TEXT}
        assert login(server.url, tenant.username, tenant.password).status_code == 531
    finally:
        set_user_state(kms_env, tenant.user_uuid, "enabled")
    assert client.request("listZones").status == 200


def test_disabled_user_session_refused(kms_env, server, admin):
    tenant = Tenant(admin)
    client = Client(server.url)
    client.login(tenant.username, tenant.password)
    assert client.request("listZones").status == 200
    set_user_state(kms_env, tenant.user_uuid, "disabled")
    reply = client.request("listZones")
    assert reply.status == 401
    assert reply.inner()["errortext"] == SESSION_TEXT


# ------------------------------------------------------------------ CLI
def _passwd(kms, username: str, stdin: str) -> subprocess.CompletedProcess:
    """``user passwd`` with the password on standard input (it is never a command-line argument)."""
    return subprocess.run([sys.executable, "-m", "cloudstack_kms.cli", "user", "passwd", username], input=stdin,
                          env=kms.env, capture_output=True, text=True, timeout=300, check=False)


def test_cli_passwd_then_login(ext_env, ext_server):
    """``cloudstack-kms user passwd`` changes the password a running server checks (on the
    database of the test-command server, whose tests never log in as admin)."""
    old, new = ext_env.admin_password, f"N3w-{secrets.token_hex(6)}!"
    assert login(ext_server.url, "admin", old).status_code == 200
    out = _passwd(ext_env, "admin", new + "\n")
    assert out.returncode == 0, out.stderr
    ext_env.admin_password = new
    assert "password updated" in out.stdout
    assert new not in out.stdout + out.stderr
    resp = login(ext_server.url, "admin", new)
    assert resp.status_code == 200, resp.text
    assert resp.json()["loginresponse"]["type"] == "1"
    assert login(ext_server.url, "admin", old).status_code == 531
    missing = _passwd(ext_env, "nobody", "x\n")
    assert missing.returncode != 0 and "no user nobody" in missing.stderr


# ------------------------------------------------------------------ logs
def test_access_log_redacts_secrets(ext_server, ext_admin_keys):
    """Clients put everything in the query string; the server log must not keep the secrets."""
    marker = f"marker{secrets.token_hex(6)}"
    start = len(ext_server.log())  # the shared server's log may hold other tests' deliberate tracebacks
    secret_values = {name: f"{name}-{secrets.token_hex(8)}" for name in ("secret", "detail", "password", "session")}
    params = {"command": "testAsyncEcho", "response": "json", "apiKey": ext_admin_keys["apikey"], "message": marker,
              "secret": secret_values["secret"], "details[0].key": "pin", "details[0].value": secret_values["detail"],
              "details[1].passphrase": secret_values["detail"] + "x"}
    request = signed(params, ext_admin_keys["secretkey"])
    resp = requests.get(ext_server.url, params=request, timeout=30)
    assert resp.status_code == 200, resp.text
    requests.get(ext_server.url, params={"command": "login", "username": "admin", "response": "json",
                                         "password": secret_values["password"], "message": marker}, timeout=30)
    requests.get(ext_server.url, params={"command": "listZones", "response": "json", "message": marker,
                                         "sessionkey": secret_values["session"]}, timeout=30)
    deadline = time.monotonic() + 10
    while ext_server.log().count(marker) < 3:  # access lines are written after the response
        assert time.monotonic() < deadline, "access log lines missing"
        time.sleep(0.1)
    log = ext_server.log()[start:]
    lines = [line for line in log.splitlines() if marker in line]
    assert len(lines) >= 3 and all("/client/api?" in line for line in lines), lines
    for value in secret_values.values():
        assert value not in log
    signature = request["signature"]
    assert signature not in log and quote(signature, safe="") not in log
    assert any("signature=*****" in line for line in lines)
    assert any("password=*****" in line for line in lines)
    assert any("sessionkey=*****" in line for line in lines)
    assert "Traceback" not in log
