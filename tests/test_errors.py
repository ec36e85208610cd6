"""Envelopes and the error catalogue (api-conventions.md §1, §4 and §5), on the wire."""
from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET

import pytest
import requests

from tests.support.client import Client, sign
from tests.support.dbtools import query
from tests.support.tenants import PASSWORD, new_account

MISSING = "Unable to execute API command {api} due to missing parameter {param}"
INVALID = "Unable to execute API command {api} due to invalid value {value} for parameter {param}"
BAD_UUID = ("Unable to execute API command {api} due to invalid value. Invalid parameter {param} value={value} "
            "due to incorrect long value format, or entity does not exist or due to incorrect parameter annotation "
            "for the field in api cmd class.")
TOO_LONG = ("Unable to execute API command {api} due to invalid value. Value greater than max allowed length "
            "{length} for param: {param}")

ZONE_ARGS = {"name": "never-created", "dns1": "8.8.8.8", "networktype": "Advanced"}


def expect_error(reply, code: int, name: str, text: str | None = None, cserrorcode: int | None = 9999) -> dict:
    assert reply.status == code, reply.text
    assert reply.headers["Content-Type"].startswith("application/json"), reply.headers
    assert list(reply.body) == [name], reply.text
    inner = reply.body[name]
    assert list(inner)[:2] == ["uuidList", "errorcode"]
    assert inner["uuidList"] == [] and inner["errorcode"] == code
    if cserrorcode is None:
        assert "cserrorcode" not in inner
    else:
        assert inner["cserrorcode"] == cserrorcode
    if text is not None:
        assert inner["errortext"] == text
    assert "Traceback" not in reply.text
    return inner


@pytest.fixture(scope="module")
def admin_session(server, kms_env) -> Client:
    client = Client(server.url)
    client.login("admin", kms_env.admin_password)
    return client


# ------------------------------------------------------------------ XML
def test_xml_is_the_default_for_a_list(admin):
    reply = admin.request("listZones", fmt=None, name="zone1")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "text/xml; charset=UTF-8"
    assert reply.text.startswith('<?xml version="1.0" encoding="UTF-8"?><listzonesresponse cloud-stack-version="')
    root = ET.fromstring(reply.text.encode())
    assert root.tag == "listzonesresponse"
    assert root.attrib["cloud-stack-version"].startswith("4.")
    assert root[0].tag == "count" and root[0].text == "1"
    zone = root.find("zone")
    assert zone.findtext("name") == "zone1"
    assert zone.findtext("securitygroupsenabled") == "false"


@pytest.mark.parametrize("value", ["xml", "XML", "text", ""])
def test_anything_but_json_gives_xml(admin, value):
    reply = admin.request("listZones", fmt=value)
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("text/xml")


def test_response_json_in_any_case(admin):
    reply = admin.request("listZones", fmt="JSON", name="zone1")
    assert reply.status == 200 and reply.body["listzonesresponse"]["count"] == 1


def test_xml_error(admin_session):
    reply = admin_session.request("noSuchCommand", fmt=None)
    assert reply.status == 432
    assert reply.headers["Content-Type"].startswith("text/xml")
    root = ET.fromstring(reply.text.encode())
    assert root.tag == "errorresponse" and "cloud-stack-version" in root.attrib
    assert [child.tag for child in root] == ["errorcode", "cserrorcode", "errortext"]
    assert root.findtext("errorcode") == "432"
    assert root.findtext("cserrorcode") == "9999"
    assert root.findtext("errortext") == "Unknown API command: noSuchCommand"


def test_xml_401_without_cserrorcode(server):
    resp = requests.get(server.url, params={"command": "listZones"}, timeout=30)
    assert resp.status_code == 401
    root = ET.fromstring(resp.content)
    assert root.tag == "listzonesresponse"
    assert [child.tag for child in root] == ["errorcode", "errortext"]


# ------------------------------------------------------------------ catalogue
def test_missing_parameter(admin):
    args = {k: v for k, v in ZONE_ARGS.items() if k != "dns1"}
    inner = expect_error(admin.request("createZone", **args), 431, "createzoneresponse",
                         MISSING.format(api="createzone", param="dns1"))
    assert inner["cserrorcode"] == 9999


def test_description_header_of_odd_values(admin):
    """The header is one line of ISO-8859-1, cut short; the body keeps the whole text."""
    reply = admin.request("listZones", page="é☃\t1", pagesize="1")
    inner = expect_error(reply, 431, "listzonesresponse", INVALID.format(api="listzones", value="é☃\t1", param="page"))
    assert reply.headers["X-Description"] == inner["errortext"].replace("☃", "?").replace("\t", " ")
    huge = "7" * 50_000
    reply = admin.request("listZones", method="POST", page=huge, pagesize="1")  # too long for a request line
    inner = expect_error(reply, 431, "listzonesresponse", INVALID.format(api="listzones", value=huge, param="page"))
    assert len(reply.headers["X-Description"]) <= 2048
    assert reply.headers["X-Description"].endswith("...")


def test_missing_parameter_header(admin):
    reply = admin.request("queryAsyncJobResult")
    inner = expect_error(reply, 431, "queryasyncjobresultresponse",
                         MISSING.format(api="queryasyncjobresult", param="jobid"))
    assert reply.headers["X-Description"] == inner["errortext"]


def test_invalid_integer(admin):
    expect_error(admin.request("listZones", page="abc", pagesize="10"), 431, "listzonesresponse",
                 INVALID.format(api="listzones", value="abc", param="page"))
    expect_error(admin.request("listZones", page="1", pagesize="99999999999999999999"), 431, "listzonesresponse",
                 INVALID.format(api="listzones", value="99999999999999999999", param="pagesize"))
    expect_error(admin.request("listZones", page="1.5", pagesize="10"), 431, "listzonesresponse")


def test_malformed_uuid(admin):
    expect_error(admin.request("getUserKeys", id="not-a-uuid"), 431, "getuserkeysresponse",
                 BAD_UUID.format(api="getuserkeys", param="id", value="not-a-uuid"))


def test_unknown_uuid(admin):
    unknown = str(uuid.uuid4())
    expect_error(admin.request("getUserKeys", id=unknown), 431, "getuserkeysresponse",
                 BAD_UUID.format(api="getuserkeys", param="id", value=unknown))
    expect_error(admin.request("createZone", domainid=unknown, **ZONE_ARGS), 431, "createzoneresponse",
                 BAD_UUID.format(api="createzone", param="domainid", value=unknown))
    assert admin.ok("listZones", name=ZONE_ARGS["name"]) == {}  # nothing was created


def test_upper_case_uuid_accepted(admin):
    account, client = new_account(admin)
    keys = admin.ok("getUserKeys", id=account["user"][0]["id"].upper())["userkeys"]
    assert keys["apikey"] == client.apikey


def test_too_long_string(admin):
    expect_error(admin.request("listZones", name="x" * 256), 431, "listzonesresponse",
                 TOO_LONG.format(api="listzones", length=255, param="name"))
    assert admin.request("listZones", name="x" * 255).status == 200


def test_choice_parameter(admin):
    expect_error(admin.request("createZone", **{**ZONE_ARGS, "networktype": "Fancy"}), 431, "createzoneresponse",
                 INVALID.format(api="createzone", value="Fancy", param="networktype"))


def test_unknown_command_with_api_key(admin):
    reply = admin.request("noSuchCommand")
    expect_error(reply, 401, "errorresponse", "unable to verify user credentials and/or request signature",
                 cserrorcode=None)
    assert "X-Description" not in reply.headers


def test_unknown_command_without_credentials(server):
    resp = requests.get(server.url, params={"command": "noSuchCommand", "response": "json"}, timeout=30)
    assert resp.status_code == 401
    assert list(resp.json()) == ["errorresponse"]


def test_unknown_command_in_root_session(admin_session):
    reply = admin_session.request("noSuchCommand")
    expect_error(reply, 432, "errorresponse", "Unknown API command: noSuchCommand")
    assert reply.headers["X-Description"] == "Unknown API command: noSuchCommand"


def test_unknown_command_in_user_session(server, admin):
    account, _ = new_account(admin)
    client = Client(server.url)
    client.login(account["user"][0]["username"], PASSWORD)
    expect_error(client.request("noSuchCommand"), 432, "errorresponse",
                 "The API noSuchCommand does not exist or is not available for this account.")
    # an API that exists but is not for this role: not run, and not a 200
    reply = client.request("createZone", **ZONE_ARGS)
    assert reply.status in (401, 432), reply.text
    assert "not available" in reply.inner()["errortext"]


def test_no_command_in_session(admin_session):
    reply = admin_session.request("")
    assert reply.status in (400, 432), reply.text
    assert reply.inner()["errorcode"] == reply.status


def test_paging_rules(admin):
    expect_error(admin.request("listZones", page="1"), 431, "listzonesresponse",
                 '"pagesize" parameter is required when "page" is specified')
    expect_error(admin.request("listZones", pagesize="10"), 431, "listzonesresponse",
                 '"page" parameter is required when "pagesize" is specified')
    expect_error(admin.request("listZones", page="1", pagesize="501"), 431, "listzonesresponse",
                 "Page size can't exceed max allowed page size value: 500", cserrorcode=4350)
    expect_error(admin.request("listZones", page="1", pagesize="-1"), 431, "listzonesresponse",
                 "Can't specify page parameter when pagesize is -1 (Unlimited)", cserrorcode=4350)
    assert admin.ok("listZones", name="zone1", page="1", pagesize="500")["count"] == 1
    assert admin.ok("listZones", name="zone1", pagesize="-1")["count"] == 1
    # past the last page: the total, and no array (cs's page loop stops on it)
    assert admin.ok("listZones", name="zone1", page="2", pagesize="1") == {"count": 1}


def test_page_size_follows_the_setting(admin):
    """``default.page.size`` is the cap, read live."""
    admin.ok("updateConfiguration", name="default.page.size", value="3")
    try:
        expect_error(admin.request("listZones", page="1", pagesize="4"), 431, "listzonesresponse",
                     "Page size can't exceed max allowed page size value: 3", cserrorcode=4350)
        assert admin.ok("listZones", name="zone1", page="1", pagesize="3")["count"] == 1
    finally:
        admin.ok("updateConfiguration", name="default.page.size", value="500")


def test_booleans_in_any_case_and_case_insensitive_names(server, admin, admin_session):
    """``listAll``/``domainId`` work as the UI sends them; ``true`` in any case is true."""
    account, _ = new_account(admin)
    Client(server.url).login(account["user"][0]["username"], PASSWORD)  # records USER.LOGIN for the tenant

    def accounts(**params) -> set[str]:
        listing = admin.ok("listEvents", type="USER.LOGIN", **params)
        return {e["account"] for e in listing.get("event", [])}

    assert account["name"] not in accounts()
    for value in ("true", "TRUE", "True", "tRuE"):
        assert account["name"] in accounts(listAll=value), value
        assert account["name"] in accounts(LISTALL=value), value
    for value in ("yes", "1", "false", "FALSE"):
        assert account["name"] not in accounts(listall=value), value
    root_domain = admin_session.ok("listEvents", type="USER.LOGIN")["event"][0]["domainid"]
    assert account["name"] in accounts(domainId=root_domain, isRecursive="True")
    assert admin.ok("listEvents", archived="TRUE", listall="true") == {}


def test_unknown_parameters_ignored(admin):
    reply = admin.request("listZones", filter="name,id", projectid="-1", ignoreproject="true", _="12345",
                          nosuchparam="x", name="zone1")
    assert reply.status == 200, reply.text
    assert reply.inner()["count"] == 1


def test_trailing_slash_and_sub_paths(server, admin_keys):
    for path in ("/client/api", "/client/api/", "/client/api/anything"):
        client = Client(server.url.replace("/client/api", path), admin_keys["apikey"], admin_keys["secretkey"])
        query = {"command": "listZones", "response": "json", "name": "zone1", "apiKey": admin_keys["apikey"]}
        query["signature"] = sign(query, admin_keys["secretkey"])
        resp = client.http.get(client.url, params=query, allow_redirects=False, timeout=30)
        assert resp.status_code == 200, (path, resp.status_code, resp.text)
        assert resp.json()["listzonesresponse"]["count"] == 1
        resp = client.http.post(client.url, data=query, allow_redirects=False, timeout=30)
        assert resp.status_code == 200, (path, resp.status_code, resp.text)


def test_security_headers(admin):
    reply = admin.request("listZones")
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" in reply.headers


def test_errors_have_json_content_type(admin, server):
    for reply in (admin.request("listZones", page="x", pagesize="1"), admin.request("noSuchCommand")):
        assert reply.headers["Content-Type"] == "application/json; charset=UTF-8"


def test_non_printable_characters(admin):
    for value in ("ab\x00c", "tab\x07", "esc\x1b[0m", "del\x7f"):
        expect_error(admin.request("listZones", name=value), 431, "listzonesresponse",
                     "Received value containing illegal ASCII non-printable characters for parameter name")
    # ordinary whitespace and unicode are fine
    assert admin.request("listZones", name="tab\there\nnew ünï").status == 200


@pytest.mark.parametrize("params", [
    {"page": "1" * 5000, "pagesize": "1"},
    {"page": "9" * 100_000, "pagesize": "1"},
    {"pagesize": "x" * 200_000, "page": "1"},
    {"keyword": "k" * 300_000},
    {"name": "%zz%%%"},
    {"name": "\U0001f600 \ufffd \u200b"},
    {"id": "'; DROP TABLE user; --"},
    {"ids": ",".join(str(uuid.uuid4()) for _ in range(2000))},
    {"name[0].key": "x", "details[7].value": "y"},  # names that are not plain: 401, test_request_hardening
    {"keyword": "☃" * 1000},
])
def test_garbage_never_500(admin, params):
    reply = admin.request("listZones", method="POST", **params)
    assert reply.status in (200, 431), (reply.status, reply.text[:500])
    assert reply.headers["Content-Type"].startswith("application/json")
    assert "Traceback" not in reply.text and "Exception" not in reply.text


def test_raw_garbage_requests(server, admin_keys):
    """Bodies and query strings that no client builds: still a CloudStack envelope, never a 500."""
    url = server.url
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    cases = [
        requests.get(url + "?command=listZones&response=json&%ff%fe=%c3%28", timeout=30),
        requests.get(url + "?command=list%00Zones&response=json", timeout=30),
        requests.get(url + "?command=listZones&response=json&name=%ff%fe", timeout=30),
        requests.post(url + "?response=json", data=b"\xff\xfe\x00garbage=%%%", headers=form, timeout=30),
        requests.post(url + "?response=json", data=b"{\"command\": \"listZones\"}",
                      headers={"Content-Type": "application/json"}, timeout=30),
        requests.post(url + "?response=json&command=listZones", data=b"x=" + b"y" * (4 * 1024 * 1024),
                      headers=form, timeout=60),
        requests.post(url + "?response=json&command=listZones", files={"f": ("a.txt", b"data")}, timeout=30),
        requests.get(url, params={"command": "listZones", "response": "json", "apiKey": admin_keys["apikey"],
                                  "signature": "%%%not-base64"}, timeout=30),
        requests.get(url, params=[("command", "listZones"), ("command", "createZone"), ("response", "json")],
                     timeout=30),
    ]
    for resp in cases:
        assert resp.status_code < 500, (resp.request.url[:200], resp.status_code, resp.text[:300])
        assert resp.status_code in (200, 401, 413, 431, 432), (resp.request.url[:200], resp.status_code)
        assert resp.headers["Content-Type"].startswith("application/json"), (resp.request.url[:200], resp.text[:200])
        assert "Traceback" not in resp.text
        assert len(resp.json()) == 1


def test_body_over_the_limit(server):
    resp = requests.post(server.url + "?response=json&command=listZones", data=b"x=" + b"y" * (17 * 1024 * 1024),
                         headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=60)
    assert resp.status_code == 413
    assert resp.headers["Content-Type"].startswith("application/json")
    assert resp.json()["errorresponse"]["errorcode"] == 413


def test_other_http_methods(server):
    resp = requests.put(server.url, params={"command": "listZones", "response": "json"}, timeout=30)
    assert resp.status_code == 405
    assert resp.json()["errorresponse"]["errorcode"] == 405


# ------------------------------------------------------------------ command errors and the transaction
GENERIC_TEXT = "Internal error executing command, please contact your system administrator"


def raised_events(kms, message: str) -> int:
    return query(kms, "SELECT COUNT(*) FROM event WHERE description = :d", d=f"Raising {message}")[0][0]


@pytest.mark.parametrize("kind, code, cserrorcode", [
    ("runtime", 530, 4250), ("invalid", 431, 4350), ("denied", 531, 4365), ("unavailable", 534, 4380)])
def test_command_errors_are_mapped_and_rolled_back(ext_env, ext_admin, kind, code, cserrorcode):
    message = f"{kind} {uuid.uuid4().hex}"
    reply = ext_admin.request("testSyncRaise", kind=kind, message=message)
    expect_error(reply, code, "testsyncraiseresponse", message, cserrorcode)
    assert reply.headers["X-Description"] == message
    assert raised_events(ext_env, message) == 0  # the event written before the error is gone


def test_success_is_committed(ext_env, ext_admin):
    message = f"fine {uuid.uuid4().hex}"
    assert ext_admin.ok("testSyncRaise", kind="none", message=message) == {"success": True, "displaytext": message}
    assert raised_events(ext_env, message) == 1


def test_a_bug_is_a_clean_530(ext_env, ext_server, ext_admin):
    message = uuid.uuid4().hex
    reply = ext_admin.request("testSyncRaise", kind="bug", message=message)
    expect_error(reply, 530, "testsyncraiseresponse", GENERIC_TEXT, 4250)
    assert message not in reply.text and "ZeroDivisionError" not in reply.text
    assert raised_events(ext_env, message) == 0


def test_a_write_conflict_is_run_again_and_the_caller_never_sees_it(ext_env, ext_admin):
    """1213 (a Galera certification failure, an InnoDB deadlock) rolls the whole transaction back:
    the dispatcher runs the request again; only the run that succeeds leaves its event."""
    message = f"conflict {uuid.uuid4().hex}"
    assert ext_admin.ok("testSyncRaise", kind="conflict", conflicts=2, message=message) == {
        "success": True, "displaytext": message}
    assert raised_events(ext_env, message) == 1


def test_a_conflict_that_never_clears_is_a_clean_530_logged_in_one_line(ext_env, ext_server, ext_admin):
    message = f"conflict {uuid.uuid4().hex}"
    reply = ext_admin.request("testSyncRaise", kind="conflict", conflicts=100, message=message)
    expect_error(reply, 530, "testsyncraiseresponse", GENERIC_TEXT, 4250)
    assert "Deadlock" not in reply.text
    assert raised_events(ext_env, message) == 0
    log = ext_server.log()
    assert "command testSyncRaise failed: database error (_DriverError 1213)" in log
    assert "Traceback" not in log.split("command testSyncRaise failed: database error (_DriverError 1213)")[-1][:200]


def test_internal_texts_hidden_from_users(ext_admin):
    _, user = new_account(ext_admin)
    for kind, code in (("runtime", 530), ("unavailable", 534)):
        reply = user.request("testSyncRaise", kind=kind, message="internal detail")
        inner = expect_error(reply, code, "testsyncraiseresponse", GENERIC_TEXT, cserrorcode=reply.inner()["cserrorcode"])
        assert "internal detail" not in reply.text and inner["cserrorcode"] in (4250, 4380)
    expect_error(user.request("testSyncRaise", kind="invalid", message="shown"), 431, "testsyncraiseresponse",
                 "shown", 4350)
