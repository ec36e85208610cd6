"""Rules shared by the infrastructure commands.

Most of them list things this server does not have (it runs no hypervisors). They still
check every parameter they accept, as a list over real rows would: paging, the account
scope (``account``/``domainid``/``listall``), and values with a fixed vocabulary (``details``);
filters over the empty set then trivially hold.
"""
from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select

from cloudstack_kms.api.access import list_scope
from cloudstack_kms.api.command import Command, ListResult
from cloudstack_kms.api.declare import ResponseObject
from cloudstack_kms.errors import InvalidParameterValue
from cloudstack_kms.api.listing import max_page_size, page_window
from cloudstack_kms.models import Account
from cloudstack_kms.models.tenancy import ROLE_ADMIN, ROLE_RESOURCE_ADMIN

#: Root and resource admins: upstream's default rules for the infrastructure lists
#: (pods, clusters, hosts, primary storage, system VMs, capacity, alerts).
INFRA_ADMINS = frozenset({ROLE_ADMIN, ROLE_RESOURCE_ADMIN})


def check_paging(cmd: Command) -> None:
    """``page``/``pagesize`` rules, with the live ``default.page.size`` cap."""
    page_window(cmd.args, max_page_size(cmd.ctx.session))


def check_owner_scope(cmd: Command) -> None:
    """``account``/``domainid``/``isrecursive``/``listall``: the same checks (and errors) as any
    list of owned resources, so a caller cannot name a domain or account outside its scope."""
    list_scope(cmd.ctx, select(Account.id), Account.id, Account.domain_id, cmd.args)


def check_choices(name: str, values: Iterable[str] | None, allowed: tuple[str, ...]) -> None:
    """Every item of a list parameter must be one of ``allowed`` (case-insensitively)."""
    if not values:
        return
    known = {a.lower() for a in allowed}
    if any(v.lower() not in known for v in values):
        raise InvalidParameterValue(f"The {name} parameter contains a non permitted value. "
                                    f"The allowed values are [{', '.join(allowed)}]")


def nothing(cmd: Command, response: type[ResponseObject], owned: bool = False) -> ListResult:
    """The answer of a list of resources this server has none of, after the parameter checks."""
    if owned:
        check_owner_scope(cmd)
    check_paging(cmd)
    return ListResult(response, [], 0)


def percent(used: int, total: int) -> str:
    """``used`` in ``total`` as a percentage with at most two decimals, no trailing zeros
    (``"12.5"``, ``"0"``), the way upstream formats ``percentused``."""
    if total <= 0:
        return "0"
    text = f"{used * 100 / total:.2f}".rstrip("0").rstrip(".")
    return text or "0"
