"""The ``account`` response object, with the account's users nested as ``user``."""
from typing import Any

from cloudstack_kms.api.declare import Out
from cloudstack_kms.models import Account, Domain, User

from ..domain.responses import ResourceCountFields
from ..user.responses import UserResponse, user_view


class AccountResponse(ResourceCountFields):
    object_name = "account"
    id = Out.uuid("the id of the account")
    name = Out.string("the name of the account")
    accounttype = Out.integer("account type (admin, domain-admin, user)")
    roleid = Out.uuid("the ID of the role")
    roletype = Out.string("the type of the role (Admin, ResourceAdmin, DomainAdmin, User)")
    rolename = Out.string("the name of the role")
    domainid = Out.uuid("id of the Domain the account belongs to")
    domain = Out.string("name of the Domain the account belongs to")
    domainpath = Out.string("path of the Domain the account belongs to")
    networkdomain = Out.string("the network domain")
    state = Out.string("the state of the account")
    iscleanuprequired = Out.boolean("true if the account requires cleanup")
    created = Out.date("the date when this account was created")
    isdefault = Out.boolean("true if account is default, false otherwise")
    groups = Out.list("the list of acl groups that account belongs to")
    accountdetails = Out.map("details for the account")
    user = Out.list("the list of users associated with account", UserResponse)
    vmrunning = Out.integer("the total number of virtual machines running for this account")
    vmstopped = Out.integer("the total number of virtual machines stopped for this account")


def account_view(account: Account, users: list[User], caller_domain: Domain | None = None,
                 resources: dict[str, Any] | None = None) -> dict[str, Any]:
    """AccountResponse fields of ``account`` with ``users`` (its live users) nested; ``resources`` the
    resource-count fields (from ``tenancy.account_resource_usage``), when asked for."""
    domain = account.domain
    role = account.role
    view = {
        "id": account.uuid, "name": account.account_name, "accounttype": account.type,
        "roleid": role.uuid if role else None, "roletype": account.role_type, "rolename": role.name if role else None,
        "domainid": domain.uuid, "domain": domain.name, "domainpath": domain.display_path,
        "networkdomain": account.network_domain, "state": account.state,
        "iscleanuprequired": bool(account.cleanup_needed), "created": account.created,
        "isdefault": bool(account.default), "groups": [],
        "user": [user_view(u, caller_domain) for u in users],
    }
    if resources is not None:
        # No virtual machines exist here, so none runs and none is stopped.
        view.update(resources, vmrunning=0, vmstopped=0)
    return view
