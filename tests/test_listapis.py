"""``listApis`` as Go cmk, Python CloudMonkey, Marvin and the web UI read it (api-conventions.md §7)."""
from __future__ import annotations

import json
import re

import jsonschema
import pytest
import requests

from cloudstack_kms.api.command import Registry
from tests.support.client import Client
from tests.support.server import TEST_COMMANDS_PACKAGE
from tests.support.tenants import PASSWORD, new_account

CAMEL_CASE = r"^[a-z][A-Za-z0-9]*$"

RESPONSE_FIELD = {
    "type": "object",
    "required": ["name", "description", "type"],
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "description": {"type": "string"},
        "type": {"type": "string"},
        "response": {"type": "array", "items": {"$ref": "#/$defs/responsefield"}},
    },
}

# What the clients type-assert or convert (§7.2): a violation crashes one of them.
LISTAPIS_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$defs": {"responsefield": RESPONSE_FIELD},
    "type": "object",
    "required": ["listapisresponse"],
    "additionalProperties": False,
    "properties": {"listapisresponse": {
        "type": "object",
        "required": ["count", "api"],  # Python CloudMonkey and Marvin need count
        "additionalProperties": False,
        "properties": {
            "count": {"type": "integer", "minimum": 1},
            "api": {"type": "array", "minItems": 1, "items": {
                "type": "object",
                "required": ["name", "description", "isasync", "params", "response"],
                "properties": {
                    "name": {"type": "string", "pattern": CAMEL_CASE},
                    "description": {"type": "string"},
                    "isasync": {"type": "boolean"},
                    "since": {"type": "string"},
                    "related": {"type": "string"},
                    "type": {"type": "string"},
                    "params": {"type": "array", "items": {
                        "type": "object",
                        "required": ["name", "description", "type", "required", "length"],
                        "properties": {
                            "name": {"type": "string", "pattern": r"^[a-z0-9]+$"},
                            "description": {"type": "string"},
                            "type": {"enum": ["boolean", "date", "float", "double", "integer", "short", "list",
                                              "long", "object", "map", "string", "uuid", "tzdate"]},
                            "required": {"type": "boolean"},
                            "length": {"type": "integer", "minimum": 1},
                            "since": {"type": "string"},
                            "related": {"type": "string", "pattern": r"^[a-z][A-Za-z0-9]*(,[a-z][A-Za-z0-9]*)*$"},
                        },
                    }},
                    "response": {"type": "array", "items": {"$ref": "#/$defs/responsefield"}},
                },
            }},
        },
    }},
}


def fetch(server, client: Client, **params) -> tuple[requests.Response, dict]:
    reply = client.request("listApis", **params)
    assert reply.status == 200, reply.text
    return reply, reply.body


@pytest.fixture(scope="module")
def user_tenant(server, admin_keys):
    """(username, signed client) of a new plain user."""
    account, client = new_account(Client(server.url, admin_keys["apikey"], admin_keys["secretkey"]))
    return account["user"][0]["username"], client


def test_schema_for_root_admin(server, admin):
    reply, body = fetch(server, admin)
    jsonschema.validate(body, LISTAPIS_SCHEMA)
    apis = body["listapisresponse"]["api"]
    assert body["listapisresponse"]["count"] == len(apis)
    names = [a["name"] for a in apis]
    assert len(names) == len(set(names))
    for api in apis:
        assert len({p["name"] for p in api["params"]}) == len(api["params"]), api["name"]


def test_body_is_one_line(server, admin):
    """Marvin's code generator parses only the first line of the body."""
    reply = admin.request("listApis")
    assert "\n" not in reply.text.rstrip("\n")
    assert json.loads(reply.text.splitlines()[0]) == reply.body


def test_root_sees_every_registered_command(server, admin):
    _, body = fetch(server, admin)
    listed = {a["name"] for a in body["listapisresponse"]["api"]}
    declared = {cmd.api_name for cmd in Registry.discover(extra=[])}
    assert listed == declared


def test_test_commands_are_listed_when_loaded(ext_server, ext_admin):
    _, body = fetch(ext_server, ext_admin)
    jsonschema.validate(body, LISTAPIS_SCHEMA)
    listed = {a["name"] for a in body["listapisresponse"]["api"]}
    assert listed == {cmd.api_name for cmd in Registry.discover(extra=[TEST_COMMANDS_PACKAGE])}
    echo = next(a for a in body["listapisresponse"]["api"] if a["name"] == "testAsyncEcho")
    assert echo["isasync"] is True
    params = {p["name"]: p for p in echo["params"]}
    assert params["sleepms"]["type"] == "integer"
    assert params["details"]["type"] == "map"
    assert params["fail"]["type"] == "boolean"


def test_listapis_matches_declarations(server, admin):
    """Each entry is generated from the command's declaration: params, types, required, async."""
    _, body = fetch(server, admin)
    by_name = {a["name"]: a for a in body["listapisresponse"]["api"]}
    for cmd in Registry.discover(extra=[]):
        api = by_name[cmd.api_name]
        assert api["description"] == cmd.description
        assert api["isasync"] is cmd.is_async
        fields = cmd.param_fields()
        assert {p["name"] for p in api["params"]} == set(fields)
        for param in api["params"]:
            assert param["required"] is bool(fields[param["name"]].required)
            assert param["type"] == fields[param["name"]].metadata["type"]


def test_listapis_by_name(server, admin):
    _, body = fetch(server, admin, name="createZone")
    jsonschema.validate(body, LISTAPIS_SCHEMA)
    assert body["listapisresponse"]["count"] == 1
    [api] = body["listapisresponse"]["api"]
    assert api["name"] == "createZone"
    assert api["isasync"] is False
    params = {p["name"]: p for p in api["params"]}
    assert params["name"]["required"] is True and params["name"]["type"] == "string"
    assert params["domainid"]["type"] == "uuid" and params["domainid"]["related"] == "listDomains"
    assert params["dns2"]["required"] is False and params["dns2"]["length"] == 255
    assert {r["name"] for r in api["response"]} >= {"id", "name", "networktype"}


def test_listapis_ignores_list_parameters(server, admin):
    """Go cmk sends listall=true; the UI sends projectid."""
    _, plain = fetch(server, admin)
    _, extra = fetch(server, admin, listall="true", projectid="-1")
    assert plain == extra


def test_user_role_sees_fewer_apis(server, admin, user_tenant):
    user = user_tenant[1]
    _, body = fetch(server, user)
    jsonschema.validate(body, LISTAPIS_SCHEMA)
    user_apis = {a["name"] for a in body["listapisresponse"]["api"]}
    _, root = fetch(server, admin)
    root_apis = {a["name"] for a in root["listapisresponse"]["api"]}
    assert "createZone" not in user_apis
    assert "updateConfiguration" not in user_apis
    assert {"listApis", "listZones", "queryAsyncJobResult", "listCapabilities"} <= user_apis
    assert user_apis < root_apis
    allowed = {cmd.api_name for cmd in Registry.discover(extra=[]) if "User" in cmd.roles}
    assert user_apis == allowed
    _, named = fetch(server, user, name="createZone")
    assert named["listapisresponse"] == {}


def test_listapis_in_a_session(server, user_tenant):
    """The web UI calls listApis right after login, with the session key."""
    http = requests.Session()
    login = http.post(server.url, data={"command": "login", "username": user_tenant[0],
                                        "password": PASSWORD, "response": "json"}, timeout=30)
    key = login.json()["loginresponse"]["sessionkey"]
    resp = http.get(server.url, params={"command": "listApis", "response": "json", "sessionkey": key}, timeout=30)
    assert resp.status_code == 200
    jsonschema.validate(resp.json(), LISTAPIS_SCHEMA)
    assert re.fullmatch(r"\{.*\}", resp.text.strip())


#: Commands whose upstream web-UI form lists ``projectid`` and cannot be drawn without it in listApis
#: (Add HSM Profile, Create KMS Key as root admin). They declare it only to refuse every value, as no
#: project exists (tests/apicommands/test_ui_commands.py proves the refusal).
REFUSE_PROJECTS = ["addHSMProfile", "createHSMProfile", "createKMSKey"]


def test_no_command_offers_projects():
    """Projects are not built: no command accepts ``projectid`` (so neither the UI nor cmk offers a
    project), and listCapabilities does not invite users to create projects."""
    from cloudstack_kms.api.command import Registry
    offering = [cls.api_name for cls in Registry.discover(extra=[]) if "projectid" in cls.param_fields()]
    assert offering == REFUSE_PROJECTS
