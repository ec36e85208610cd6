"""The ``userkeys`` and ``user`` response objects."""
from typing import Any

from cloudstack_kms.api.declare import Out, ResponseObject
from cloudstack_kms.models import Domain, User


class UserKeysResponse(ResponseObject):
    object_name = "userkeys"
    apikey = Out.string("the api key of the registered user")
    secretkey = Out.string("the secret key of the registered user")


class UserResponse(ResponseObject):
    """The ``user`` object of ``listUsers``/``createUser``, also nested in ``account.user``."""

    object_name = "user"
    id = Out.uuid("the user ID")
    username = Out.string("the user name")
    firstname = Out.string("the user firstname")
    lastname = Out.string("the user lastname")
    email = Out.string("the user email address")
    created = Out.date("the date and time the user account was created")
    state = Out.string("the user state")
    account = Out.string("the account name of the user")
    accountid = Out.uuid("the account ID of the user")
    accounttype = Out.integer("the account type of the user")
    roleid = Out.uuid("the ID of the role")
    roletype = Out.string("the type of the role")
    rolename = Out.string("the name of the role")
    domainid = Out.uuid("the domain ID of the user")
    domain = Out.string("the domain name of the user")
    timezone = Out.string("the timezone user was created in")
    apikey = Out.string("the api key of the user")
    usersource = Out.string("the source type of the user in lowercase, such as native, ldap, saml2")
    iscallerchilddomain = Out.boolean("the boolean value representing if the updating target is in caller's "
                                      "child domain")
    isdefault = Out.boolean("true if user is default, false otherwise")
    is2faenabled = Out.boolean("true if user has two factor authentication enabled")
    is2famandated = Out.boolean("true if user has two factor authentication is mandated")


def user_view(user: User, caller_domain: Domain | None = None) -> dict[str, Any]:
    """UserResponse fields of ``user``; ``caller_domain`` fills ``iscallerchilddomain``."""
    account = user.account
    domain = account.domain
    role = account.role
    source = (user.source or "UNKNOWN").lower()
    return {
        "id": user.uuid, "username": user.username, "firstname": user.firstname, "lastname": user.lastname,
        "email": user.email, "created": user.created, "state": user.state, "account": account.account_name,
        "accountid": account.uuid, "accounttype": account.type, "roleid": role.uuid if role else None,
        "roletype": account.role_type, "rolename": role.name if role else None,
        "domainid": domain.uuid if domain else None, "domain": domain.name if domain else None,
        "timezone": user.timezone, "apikey": user.api_key,
        "usersource": "native" if source == "unknown" else source,
        "iscallerchilddomain": (domain is not None and caller_domain is not None
                                and domain.path.startswith(caller_domain.path)),
        "isdefault": bool(user.default), "is2faenabled": False, "is2famandated": False,
    }
