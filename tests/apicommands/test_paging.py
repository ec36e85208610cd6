"""``page`` and ``pagesize`` each require the other, on every list command (api-conventions.md §4.3):
431 ``"pagesize" parameter is required when "page" is specified`` and the reverse, under the
command's own response name, with cserrorcode 9999 and the text in ``X-Description``;
``pagesize=-1`` alone means unlimited.

Every declared command with paging parameters is checked, signed with GET and POST and in a
browser-style session (the UI writes ``pageSize``), so a new list command cannot skip the rule.
"""
from __future__ import annotations

import pytest

from cloudstack_kms.api.command import Registry
from tests.support.client import Client, Reply

PAGE_NEEDS_SIZE = '"pagesize" parameter is required when "page" is specified'
SIZE_NEEDS_PAGE = '"page" parameter is required when "pagesize" is specified'

PAGED = sorted(name for name, cls in Registry.discover(extra=[]).commands.items()
               if {"page", "pagesize"} <= set(cls.param_fields()))


def response_name(command: str) -> str:
    return Registry.discover(extra=[]).get(command).response_name()


def assert_paging_error(reply: Reply, command: str, text: str) -> None:
    assert reply.status == 431, reply.text
    assert reply.body == {response_name(command): {"uuidList": [], "errorcode": 431, "cserrorcode": 9999,
                                                    "errortext": text}}
    assert reply.headers.get("X-Description") == text


@pytest.fixture(scope="module")
def session_admin(server, kms_env) -> Client:
    client = Client(server.url)
    client.login("admin", kms_env.admin_password)
    return client


def test_every_list_command_has_paging():
    assert {"listAccounts", "listUsers", "listDomains", "listDomainChildren", "listRoles", "listZones"} <= set(PAGED)


@pytest.mark.parametrize("command", PAGED)
def test_page_without_pagesize(admin, command):
    assert_paging_error(admin.request(command, page=1), command, PAGE_NEEDS_SIZE)
    assert_paging_error(admin.request(command, method="POST", page=2), command, PAGE_NEEDS_SIZE)


@pytest.mark.parametrize("command", PAGED)
def test_pagesize_without_page(admin, command):
    assert_paging_error(admin.request(command, pagesize=5), command, SIZE_NEEDS_PAGE)
    assert_paging_error(admin.request(command, method="POST", pagesize=5), command, SIZE_NEEDS_PAGE)


@pytest.mark.parametrize("command", PAGED)
def test_both_or_unlimited_are_accepted(admin, command):
    assert admin.request(command, page=1, pagesize=5).status == 200
    assert admin.request(command, pagesize=-1).status == 200
    assert admin.request(command).status == 200


@pytest.mark.parametrize("command", ["listAccounts", "listUsers", "listDomainChildren", "listRoles"])
def test_in_a_session_with_the_uis_parameter_names(session_admin, command):
    assert session_admin.request(command, listAll="true", page=1, pageSize=20).status == 200
    assert_paging_error(session_admin.request(command, listAll="true", page=1), command, PAGE_NEEDS_SIZE)
    assert_paging_error(session_admin.request(command, listAll="true", pageSize=20), command, SIZE_NEEDS_PAGE)


def test_an_empty_value_counts_as_not_given(admin):
    assert_paging_error(admin.request("listUsers", page=1, pagesize=""), "listUsers", PAGE_NEEDS_SIZE)
    assert_paging_error(admin.request("listUsers", page="", pagesize=3), "listUsers", SIZE_NEEDS_PAGE)


def test_paging_is_checked_before_the_command_runs(admin):
    """An unknown domain would be 431 too, but with another text: the pair is checked first."""
    assert_paging_error(admin.request("listDomainChildren", id="00000000-0000-4000-8000-000000000000", page=1),
                        "listDomainChildren", PAGE_NEEDS_SIZE)
