"""Real client libraries against a live server: the PyPI ``cs`` client and Apache Libcloud.

These clients sign differently from each other and from the Java server (see
api-conventions.md §2.2), so each test here is a compatibility promise to one of them.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
import requests
from cs import CloudStack, CloudStackApiException
from libcloud.common.types import InvalidCredsError
from libcloud.compute.drivers.cloudstack import CloudStackNodeDriver

VERIFY_TEXT = "unable to verify user credentials and/or request signature"


def cs_client(server, keys, **kw) -> CloudStack:
    kw.setdefault("timeout", 30)
    kw.setdefault("poll_interval", 0.2)
    kw.setdefault("job_timeout", 60)
    return CloudStack(endpoint=server.url, key=keys["apikey"], secret=keys["secretkey"], **kw)


class TamperingSession(requests.Session):
    """Flips one character of the signature on the wire, after the client signed."""

    def send(self, request, **kwargs):  # noqa: ANN001, ANN003, ANN201
        parts = urlsplit(request.url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        tampered = []
        for name, value in query:
            if name == "signature":
                value = ("B" if value[0] == "A" else "A") + value[1:]
            tampered.append((name, value))
        request.url = urlunsplit(parts._replace(query=urlencode(tampered)))
        return super().send(request, **kwargs)


# ------------------------------------------------------------------ cs
def test_cs_signed_get_v3(ext_server, ext_admin_keys):
    """cs signs with signatureVersion=3 and an expires 10 minutes ahead by default."""
    cs = cs_client(ext_server, ext_admin_keys)
    zones = cs.listZones()
    assert zones["count"] == 1 and zones["zone"][0]["name"] == "zone1"


def test_cs_signed_get_v1_without_expires(ext_server, ext_admin_keys):
    """A negative expiration makes cs send neither signatureVersion nor expires."""
    cs = cs_client(ext_server, ext_admin_keys, expiration=-1)
    assert cs.listZones(name="zone1")["count"] == 1


def test_cs_signed_post(ext_server, ext_admin_keys):
    cs = cs_client(ext_server, ext_admin_keys, method="post")
    assert cs.listZones()["zone"][0]["name"] == "zone1"
    # A POST with odd characters in a form value still verifies.
    assert cs.listZones(keyword="zone 1/é*~") == {}


def test_cs_values_that_encode_differently(ext_server, ext_admin_keys):
    """cs leaves ``~`` raw and encodes ``/``; unicode goes as UTF-8."""
    cs = cs_client(ext_server, ext_admin_keys)
    for keyword in ("a~b", "x/y", "ünïcødé ☃", "a+b=c&d", "100%", "[brackets]", "*star*", "'quote\""):
        assert cs.listZones(keyword=keyword) == {}, keyword
    assert cs.listZones(keyword="zone")["count"] == 1


@pytest.mark.parametrize("expires", [
    "{future:%Y-%m-%dT%H:%M:%S}+0000",
    "{future:%Y-%m-%dT%H:%M:%S}+00:00",
    "{future:%Y-%m-%dT%H:%M:%S}Z",
    "{future:%Y-%m-%dT%H:%M:%S}.123456+0000",
    "{future:%Y-%m-%dT%H:%M:%S}Z+0000",
])
def test_cs_v3_expires_formats_accepted(ext_server, ext_admin_keys, expires):
    future = datetime.now(timezone.utc) + timedelta(minutes=5)
    cs = cs_client(ext_server, ext_admin_keys)
    assert cs.listZones(signatureVersion="3", expires=expires.format(future=future))["count"] == 1


def test_cs_expired_request_refused(ext_server, ext_admin_keys):
    cs = cs_client(ext_server, ext_admin_keys)
    past = (datetime.now(timezone.utc) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S+0000")
    with pytest.raises(CloudStackApiException) as info:
        cs.listZones(signatureVersion="3", expires=past)
    assert info.value.response.status_code == 401
    assert info.value.error == {"uuidList": [], "errorcode": 401, "errortext": VERIFY_TEXT}
    assert list(info.value.response.json()) == ["listzonesresponse"]


def test_cs_tampered_signature_refused(ext_server, ext_admin_keys):
    cs = cs_client(ext_server, ext_admin_keys, session=TamperingSession())
    with pytest.raises(CloudStackApiException) as info:
        cs.listZones()
    response = info.value.response
    assert response.status_code == 401
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert list(body) == ["listzonesresponse"]
    assert "cserrorcode" not in body["listzonesresponse"]
    assert body["listzonesresponse"]["errortext"] == VERIFY_TEXT
    assert "X-Description" not in response.headers


def test_cs_wrong_secret_refused(ext_server, ext_admin_keys):
    cs = cs_client(ext_server, {"apikey": ext_admin_keys["apikey"], "secretkey": "not-the-secret"})
    with pytest.raises(CloudStackApiException) as info:
        cs.listApis(name="listZones")
    assert info.value.response.status_code == 401
    assert list(info.value.response.json()) == ["listapisresponse"]
    assert "cserrorcode" not in info.value.error


def test_cs_async_command_fetch_result(ext_server, ext_admin_keys):
    cs = cs_client(ext_server, ext_admin_keys)
    submitted = cs.testAsyncEcho(message="hello")
    assert isinstance(submitted["jobid"], str) and set(submitted) == {"jobid"}
    result = cs.testAsyncEcho(message="hello cs", sleepms=300, fetch_result=True)
    assert result == {"echo": {"message": "hello cs"}}


def test_cs_async_map_and_post(ext_server, ext_admin_keys):
    """cs turns a dict into ``details[0].key=value`` pairs; a POST form carries them."""
    cs = cs_client(ext_server, ext_admin_keys, method="post")
    result = cs.testAsyncEcho(message="m", details={"colour": "blue", "size": "xl"}, secret="s3cr3t",
                              fetch_result=True)
    assert result["echo"]["details"] == {"colour": "blue", "size": "xl"}
    assert result["echo"]["secretlength"] == 6


def test_cs_async_failure_raises(ext_server, ext_admin_keys):
    cs = cs_client(ext_server, ext_admin_keys)
    with pytest.raises(CloudStackApiException) as info:
        cs.testAsyncEcho(message="boom", fail=True, fetch_result=True)
    assert info.value.error == {"errorcode": 530, "errortext": "testAsyncEcho failed as asked: boom"}


def test_cs_list_all_pages(ext_server, ext_admin_keys):
    """cs's page loop (page/pagesize, stops on count) ends on our answers."""
    cs = cs_client(ext_server, ext_admin_keys)
    zones = cs.listZones(fetch_list=True)
    assert [z["name"] for z in zones] == ["zone1"]
    apis = cs.listApis(fetch_list=True)
    assert "testAsyncEcho" in {a["name"] for a in apis}


def test_cs_validation_error(ext_server, ext_admin_keys):
    cs = cs_client(ext_server, ext_admin_keys)
    with pytest.raises(CloudStackApiException) as info:
        cs.testAsyncEcho(sleepms="soon")
    assert info.value.response.status_code == 431
    assert info.value.error["cserrorcode"] == 9999
    assert info.value.error["errortext"] == ("Unable to execute API command testasyncecho due to invalid value "
                                             "soon for parameter sleepms")


# ------------------------------------------------------------------ libcloud
def libcloud_driver(server, keys) -> CloudStackNodeDriver:
    return CloudStackNodeDriver(key=keys["apikey"], secret=keys["secretkey"], secure=False, host="127.0.0.1",
                                port=server.port, path="/client/api")


def test_libcloud_sync_request(ext_server, ext_admin_keys):
    driver = libcloud_driver(ext_server, ext_admin_keys)
    zones = driver.connection._sync_request("listZones")
    assert zones["count"] == 1 and zones["zone"][0]["name"] == "zone1"
    # libcloud sorts lower-cased keys and leaves [ ] ~ raw in values.
    assert driver.connection._sync_request("listZones", params={"keyword": "[a]~b", "listAll": "true"}) == {}


def test_libcloud_driver_call(ext_server, ext_admin_keys):
    """A real driver method built on listZones."""
    driver = libcloud_driver(ext_server, ext_admin_keys)
    locations = driver.list_locations()
    assert [loc.name for loc in locations] == ["zone1"]


def test_libcloud_async_request(ext_server, ext_admin_keys):
    driver = libcloud_driver(ext_server, ext_admin_keys)
    result = driver._async_request("testAsyncEcho", params={"message": "hi libcloud"})
    assert result == {"echo": {"message": "hi libcloud"}}
    with pytest.raises(Exception, match="testAsyncEcho failed as asked: bad"):
        driver._async_request("testAsyncEcho", params={"message": "bad", "fail": "true"})


def test_libcloud_bad_credentials(ext_server, ext_admin_keys):
    driver = libcloud_driver(ext_server, {"apikey": ext_admin_keys["apikey"], "secretkey": "wrong"})
    with pytest.raises(InvalidCredsError):
        driver.connection._sync_request("listZones")
