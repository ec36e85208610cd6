"""Domains, accounts and users: creating them, checking them, and removing them.

The rules here are CloudStack's (``DomainManagerImpl``/``AccountManagerImpl``): a domain's
``path`` is its parent's path plus ``<name>/``; an account belongs to one domain and starts
with one user; a username is unique within a domain; the built-in accounts (``default`` = 1)
and the ROOT domain cannot be deleted; deletion is a soft delete (``removed`` timestamps).

Functions take the session and never commit: the caller (a command, a job, the CLI) owns the
transaction, so a refusal anywhere (a hook raising, a check failing) rolls back everything
the operation did, including what earlier hooks changed. Access to the domain tree (who may
act inside which domain) is checked by the commands with :mod:`cloudstack_kms.api.access`;
the role-type rule (nobody creates or deletes an account of a role type above its own) is
checked here because it belongs to the operation, not to the request.

Extension points
----------------
Later subsystems that own rows of an account or a domain (KMS keys, HSM profiles, volumes)
register into these lists when their module is imported (normally from
``cloudstack_kms/extensions.py``). Each callable runs inside the deleting transaction:

:data:`ACCOUNT_DELETE_HOOKS`
    ``hook(session, account)`` runs for every account about to be removed, by
    ``deleteAccount`` and by ``deleteDomain cleanup=true`` alike, *before* the account and
    its users are marked removed (so the hook still sees them live). A hook either cleans up
    what the account owns (soft-deletes its keys, schedules its volumes) or refuses the whole
    delete by raising an :class:`~cloudstack_kms.errors.ApiError` (e.g.
    ``ResourceInUse``); the error text reaches the caller as the job's ``errortext``
    (prefer 431/536 errors: the job runner hides 530/533/534 texts from non-root callers).

:data:`DOMAIN_DELETE_CHECKS`
    ``check(session, domain)`` runs for every domain a ``deleteDomain`` would remove (the
    domain itself and, with ``cleanup=true``, each sub-domain), before anything is changed.
    It inspects and raises to refuse; it must not modify rows.

:data:`DOMAIN_DELETE_HOOKS`
    ``hook(session, domain)`` runs for every domain as it is removed, after its accounts
    are gone and before it is marked removed: the place to drop rows scoped to the domain
    (domain-dedicated profiles, settings). It may also raise to refuse.

Hooks act only through the session they are given: they must not commit, open their own
transactions or call outside systems they cannot undo, because a later hook may still refuse
and roll the whole delete back. A refused delete may be retried, so a hook may see the same
account or domain more than once.
"""
from __future__ import annotations

import re
from typing import Callable

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ..errors import CloudRuntimeError, InvalidParameterValue, PermissionDenied
from ..models import Account, Domain, Role, User
from ..models.base import new_uuid, utcnow
from ..models.tenancy import (ACCOUNT_TYPE_ADMIN, ACCOUNT_TYPE_DOMAIN_ADMIN, ACCOUNT_TYPE_RESOURCE_ADMIN,
                              ACCOUNT_TYPE_USER, DEFAULT_ROLE_ID_BY_ACCOUNT_TYPE, ROLE_ADMIN,
                              ROLE_TYPE_BY_ACCOUNT_TYPE)
from ..models.volume import Volume
from ..security.passwords import hash_password
from .access import check_may_act_on, role_rank

ROOT_DOMAIN_ID = 1
SYSTEM_ACCOUNT_ID = 1
SYSTEM_USER_ID = 1
STATE_ACTIVE, STATE_INACTIVE = "Active", "Inactive"
ACCOUNT_STATE_REMOVED = "removed"
#: The ``source`` of users created here (shown as ``usersource`` = ``native``).
SOURCE_NATIVE = "UNKNOWN"

#: Hooks run for each account about to be removed; see the module docstring.
ACCOUNT_DELETE_HOOKS: list[Callable[[Session, Account], None]] = []
#: Checks run for each domain a deleteDomain would remove, before any change.
DOMAIN_DELETE_CHECKS: list[Callable[[Session, Domain], None]] = []
#: Hooks run for each domain as it is removed, after its accounts are removed.
DOMAIN_DELETE_HOOKS: list[Callable[[Session, Domain], None]] = []

ACCOUNT_TYPE_BY_ROLE_TYPE = {role: account_type for account_type, role in ROLE_TYPE_BY_ACCOUNT_TYPE.items()}
ACCOUNT_TYPES = (ACCOUNT_TYPE_USER, ACCOUNT_TYPE_ADMIN, ACCOUNT_TYPE_DOMAIN_ADMIN, ACCOUNT_TYPE_RESOURCE_ADMIN)
_ACCOUNT_TYPE_NAMES = {ACCOUNT_TYPE_USER: "NORMAL", ACCOUNT_TYPE_ADMIN: "ADMIN",
                       ACCOUNT_TYPE_DOMAIN_ADMIN: "DOMAIN_ADMIN", ACCOUNT_TYPE_RESOURCE_ADMIN: "RESOURCE_DOMAIN_ADMIN"}
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
NETWORK_DOMAIN_TEXT = (
    "Invalid network domain. Total length shouldn't exceed 190 chars. Each domain label must be between 1 and 63 "
    "characters long, can contain ASCII letters 'a' through 'z', the digits '0' through '9', and the hyphen ('-'); "
    "can't start or end with \"-\"")
EMPTY_PASSWORD_TEXT = "Empty passwords are not allowed"


# ------------------------------------------------------------------ small helpers
def domain_label(domain: Domain) -> str:
    """How texts name a domain: its path and uuid, never the numeric id."""
    return f"{domain.display_path} ({domain.uuid})"


def validate_network_domain(value: str | None) -> None:
    """CloudStack's ``NetUtils.verifyDomainName``: dot-separated DNS labels, 190 chars at most."""
    if not value:
        return
    if len(value) > 190 or not all(_LABEL.match(label) for label in value.split(".")):
        raise InvalidParameterValue(NETWORK_DOMAIN_TEXT)


def check_custom_uuid(value: str | None, param: str) -> None:
    """A caller-chosen uuid (``domainid``/``accountid``/``userid`` of the create commands) must look like one."""
    if value is not None and not _UUID.match(value):
        raise InvalidParameterValue(f"Invalid value {value} for parameter {param}: a UUID is expected")


def _check_free_uuid(session: Session, model: type, value: str | None, what: str) -> None:
    if value and session.scalar(select(func.count()).select_from(model).where(model.uuid == value)):
        raise InvalidParameterValue(f"{what} with UUID [{value}] already exists")


def _lock_domain(session: Session, domain: Domain) -> None:
    """Serialise creations inside one domain (uniqueness checks) on MySQL; SQLite already serialises writers."""
    session.execute(select(Domain.id).where(Domain.id == domain.id).with_for_update())


def check_role_rank(caller: Account | None, target_role_type: str, target_name: str | None,
                    target_uuid: str | None) -> None:
    """Nobody creates an account (or a user of one) whose role type is above its own; root admin and
    system excepted. Acting on an existing account is stricter (strictly lower role, see
    :func:`cloudstack_kms.services.access.may_act_on`), and the commands check that first."""
    if caller is None or caller.role_type == ROLE_ADMIN:
        return
    if role_rank(caller.role_type) > role_rank(target_role_type):
        raise PermissionDenied(
            f"The calling account [{caller.account_name}, {caller.uuid}] has a lower role type than the user "
            f"account [{target_name}, {target_uuid}]")


def subtree(session: Session, domain: Domain, *, include_self: bool = True) -> list[Domain]:
    """Live domains under ``domain`` (by path prefix), deepest first."""
    stmt = select(Domain).where(Domain.path.startswith(domain.path, autoescape=True), Domain.removed.is_(None))
    rows = [d for d in session.scalars(stmt) if include_self or d.id != domain.id]
    return sorted(rows, key=lambda d: (-d.level, d.id))


def child_counts(session: Session, domain_ids: list[int]) -> dict[int, int]:
    """Number of live children of each domain id (``haschild``)."""
    if not domain_ids:
        return {}
    rows = session.execute(select(Domain.parent, func.count()).where(
        Domain.parent.in_(domain_ids), Domain.removed.is_(None)).group_by(Domain.parent))
    return {parent: count for parent, count in rows}


def live_accounts(session: Session, domain: Domain) -> list[Account]:
    return list(session.scalars(select(Account).where(Account.domain_id == domain.id, Account.removed.is_(None))
                                .order_by(Account.id)))


def account_users(session: Session, accounts: list[Account]) -> dict[int, list[User]]:
    """Live users of each account, by account id, oldest first."""
    result: dict[int, list[User]] = {a.id: [] for a in accounts}
    if not accounts:
        return result
    for user in session.scalars(select(User).where(User.account_id.in_(list(result)), User.removed.is_(None))
                                .order_by(User.id)):
        result[user.account_id].append(user)
    return result


def find_user_in_domain(session: Session, username: str, domain: Domain) -> User | None:
    return session.scalars(
        select(User).join(Account, User.account_id == Account.id)
        .where(User.username == username, User.removed.is_(None), Account.domain_id == domain.id)).first()


def find_account_in_domain(session: Session, name: str, domain: Domain) -> Account | None:
    return session.scalars(select(Account).where(Account.account_name == name, Account.domain_id == domain.id,
                                                 Account.removed.is_(None))).first()


# ------------------------------------------------------------------ domains
def create_domain(session: Session, *, name: str, parent: Domain, owner: Account,
                  network_domain: str | None = None, uuid: str | None = None) -> Domain:
    """A new child of ``parent``. ``owner`` is the creating account, as upstream records it."""
    if parent.state == STATE_INACTIVE:
        raise CloudRuntimeError(f"The domain cannot be created as the parent domain {parent.name} is being deleted")
    if "/" in name:
        # The path is built from names, so a slash would forge a path of another branch.
        raise InvalidParameterValue(f"Domain name [{name}] cannot contain the character '/'")
    validate_network_domain(network_domain)
    _lock_domain(session, parent)
    taken = session.scalars(select(Domain.id).where(Domain.parent == parent.id, Domain.name == name,
                                                    Domain.removed.is_(None))).first()
    if taken is not None:
        raise InvalidParameterValue(f"Domain with name [{name}] already exists for the parent with ID [{parent.uuid}].")
    _check_free_uuid(session, Domain, uuid, "Domain")
    domain = Domain(name=name, parent=parent.id, owner=owner.id, path=f"{parent.path}{name}/",
                    level=parent.level + 1, network_domain=network_domain or None, state=STATE_ACTIVE,
                    uuid=uuid or new_uuid())
    session.add(domain)
    # Counters updated in SQL, not read-modify-write, so concurrent creations do not lose counts.
    session.execute(update(Domain).where(Domain.id == parent.id).values(
        child_count=Domain.child_count + 1, next_child_seq=Domain.next_child_seq + 1))
    session.flush()
    return domain


def check_domain_deletable(domain: Domain) -> None:
    if domain.id == ROOT_DOMAIN_ID or domain.parent is None:
        raise PermissionDenied("Can't delete ROOT domain")


def check_may_remove_domain(session: Session, caller: Account | None, domain: Domain, doomed: list[Domain]) -> None:
    """Removing a domain removes its accounts: a caller who may not act on one of them (a peer
    domain admin, say) may not remove the domain either; nor the domain it belongs to itself."""
    if caller is None or caller.role_type == ROLE_ADMIN:
        return
    if domain.id == caller.domain_id:
        raise PermissionDenied(f"Account {caller.account_name} cannot delete its own domain id={domain.uuid}")
    for each in doomed:
        for account in live_accounts(session, each):
            check_may_act_on(caller, account)


def delete_domain(session: Session, domain: Domain, *, cleanup: bool, caller: Account | None = None) -> None:
    """Remove ``domain``; with ``cleanup`` also every sub-domain and account under it.

    Without ``cleanup`` the domain must be empty (no live sub-domain, no live account),
    as upstream. Everything happens in the caller's transaction: a refusal anywhere leaves
    the tree as it was.
    """
    check_domain_deletable(domain)
    if not cleanup:
        pending = session.scalar(select(func.count()).select_from(Account).where(
            Account.domain_id == domain.id, Account.removed.is_not(None), Account.cleanup_needed.is_(True))) or 0
        if pending:
            raise CloudRuntimeError(f"Can't delete the domain yet because it has {pending} accounts to cleanup")
        has_child = child_counts(session, [domain.id]).get(domain.id, 0) > 0
        if has_child or live_accounts(session, domain):
            raise CloudRuntimeError(
                f"Delete failed on domain {domain.name} (id: {domain.uuid}); Please make sure all users and sub "
                "domains have been removed from the domain before deleting")
        doomed = [domain]
    else:
        doomed = subtree(session, domain)
    check_may_remove_domain(session, caller, domain, doomed)
    for check in DOMAIN_DELETE_CHECKS:
        for each in doomed:
            check(session, each)
    now = utcnow()
    for each in doomed:  # deepest first: children go before their parent
        each.state = STATE_INACTIVE
        for account in live_accounts(session, each):
            delete_account(session, account, caller=caller, checked=False)
        for hook in DOMAIN_DELETE_HOOKS:
            hook(session, each)
        each.removed = now
        session.execute(update(Domain).where(Domain.id == each.parent, Domain.child_count > 0)
                        .values(child_count=Domain.child_count - 1))
    session.flush()


# ------------------------------------------------------------------ accounts and users
def resolve_account_type(account_type: int | None, role: Role | None) -> tuple[int, int]:
    """(account type, role id) from ``accounttype`` and/or ``roleid``; the role wins, as upstream."""
    if role is not None:
        if role.role_type not in ACCOUNT_TYPE_BY_ROLE_TYPE:
            raise InvalidParameterValue(f"Role {role.name} has an unknown role type {role.role_type}")
        return ACCOUNT_TYPE_BY_ROLE_TYPE[role.role_type], role.id
    if account_type is None:
        raise InvalidParameterValue("Neither account type and role ID are not provided")
    if account_type not in ACCOUNT_TYPES:
        raise InvalidParameterValue(f"Invalid account type {account_type} given; valid types are 0 (user), "
                                    "1 (root admin), 2 (domain admin) and 3 (resource admin)")
    return account_type, DEFAULT_ROLE_ID_BY_ACCOUNT_TYPE[account_type]


def _check_user_fields(username: str, password: str, timezone: str | None) -> None:
    if not password:
        raise InvalidParameterValue(EMPTY_PASSWORD_TEXT)
    if not username.strip():
        raise InvalidParameterValue("Username is empty")
    if timezone is not None and len(timezone) > 30:
        raise InvalidParameterValue(f"Invalid timezone {timezone}: at most 30 characters")


def _new_user(session: Session, account: Account, *, username: str, password: str, firstname: str,
              lastname: str, email: str | None, timezone: str | None, uuid: str | None) -> User:
    _check_free_uuid(session, User, uuid, "User")
    user = User(uuid=uuid or new_uuid(), username=username, password=hash_password(password), account_id=account.id,
                firstname=firstname, lastname=lastname, email=email, timezone=timezone, state="enabled",
                source=SOURCE_NATIVE, created=utcnow())
    session.add(user)
    session.flush()
    return user


def create_account(session: Session, *, caller: Account | None, domain: Domain, username: str, password: str,
                   firstname: str, lastname: str, email: str | None, account_type: int | None = None,
                   role: Role | None = None, account_name: str | None = None, timezone: str | None = None,
                   network_domain: str | None = None, account_uuid: str | None = None,
                   user_uuid: str | None = None) -> tuple[Account, User]:
    """A new account in ``domain`` with its first user; ``account_name`` defaults to the username."""
    account_type, role_id = resolve_account_type(account_type, role)
    name = account_name or username
    _check_user_fields(username, password, timezone)
    if len(name) > 100:
        raise InvalidParameterValue(f"Account name {name} is too long: at most 100 characters")
    if domain.state == STATE_INACTIVE:
        raise CloudRuntimeError(f"The account cannot be created as domain {domain.name} is being deleted")
    _lock_domain(session, domain)
    if find_user_in_domain(session, username, domain) is not None:
        raise InvalidParameterValue(f"The user {username} already exists in domain {domain_label(domain)}")
    validate_network_domain(network_domain)
    if domain.id != ROOT_DOMAIN_ID and account_type == ACCOUNT_TYPE_ADMIN:
        raise InvalidParameterValue(
            f"Invalid account type {_ACCOUNT_TYPE_NAMES[account_type]} given for an account in domain "
            f"{domain_label(domain)}; unable to create user of admin role type in non-ROOT domain.")
    if find_account_in_domain(session, name, domain) is not None:
        raise InvalidParameterValue(f"The specified account: {name} already exists")
    _check_free_uuid(session, Account, account_uuid, "Account")
    account_uuid = account_uuid or new_uuid()
    role_row = session.get(Role, role_id)
    check_role_rank(caller, role_row.role_type if role_row else ROLE_TYPE_BY_ACCOUNT_TYPE[account_type], name,
                    account_uuid)
    account = Account(uuid=account_uuid, account_name=name, type=account_type, role_id=role_id, domain_id=domain.id,
                      state="enabled", network_domain=network_domain or None, default=0, created=utcnow())
    session.add(account)
    session.flush()
    user = _new_user(session, account, username=username, password=password, firstname=firstname,
                     lastname=lastname, email=email, timezone=timezone, uuid=user_uuid)
    return account, user


def create_user(session: Session, *, caller: Account | None, account: Account, username: str, password: str,
                firstname: str, lastname: str, email: str | None, timezone: str | None = None,
                user_uuid: str | None = None) -> User:
    """One more user of an existing, enabled account."""
    domain = account.domain
    _check_user_fields(username, password, timezone)
    if domain.state == STATE_INACTIVE:
        raise CloudRuntimeError(f"The user cannot be created as domain {domain.name} is being deleted")
    if account.id == SYSTEM_ACCOUNT_ID:
        raise PermissionDenied(f"Account: {account.account_name} is a system account, can't add a user to it")
    _lock_domain(session, domain)
    if find_user_in_domain(session, username, domain) is not None:
        raise InvalidParameterValue(f"The user {username} already exists in domain {domain_label(domain)}")
    check_role_rank(caller, account.role_type, account.account_name, account.uuid)
    return _new_user(session, account, username=username, password=password, firstname=firstname,
                     lastname=lastname, email=email, timezone=timezone, uuid=user_uuid)


def find_enabled_account(session: Session, name: str, domain: Domain) -> Account:
    account = session.scalars(select(Account).where(Account.account_name == name, Account.domain_id == domain.id,
                                                    Account.removed.is_(None), Account.state == "enabled")).first()
    if account is None:
        raise InvalidParameterValue(f"Unable to find account {name} in domain {domain_label(domain)} to create user")
    return account


def check_account_deletable(account: Account, caller: Account | None = None) -> None:
    """The refusals of ``deleteAccount`` that do not depend on what the account owns."""
    if account.default:
        raise InvalidParameterValue("The account is default and can't be removed")
    check_role_rank(caller, account.role_type, account.account_name, account.uuid)


def delete_account(session: Session, account: Account, *, caller: Account | None = None,
                   checked: bool = True) -> None:
    """Soft-delete ``account`` and its users after every :data:`ACCOUNT_DELETE_HOOKS` agreed.

    ``checked`` False skips the caller's role-type check (a domain cleanup already decided),
    never the default-account refusal.
    """
    if account.removed is not None:
        return
    if checked:
        check_account_deletable(account, caller)
    elif account.default:
        raise InvalidParameterValue("The account is default and can't be removed")
    for hook in ACCOUNT_DELETE_HOOKS:
        hook(session, account)
    now = utcnow()
    session.execute(update(User).where(User.account_id == account.id, User.removed.is_(None)).values(removed=now))
    account.removed = now
    account.state = ACCOUNT_STATE_REMOVED
    account.cleanup_needed = False
    session.flush()


# ------------------------------------------------------------------ user states
USER_ENABLED, USER_DISABLED, USER_LOCKED = "enabled", "disabled", "locked"


def _check_not_system_user(user: User, action: str) -> None:
    if user.account_id == SYSTEM_ACCOUNT_ID:
        raise InvalidParameterValue(f"User: {user.username} ({user.uuid}) is a system user, {action} is not allowed")


def disable_user(session: Session, user: User) -> User:
    """``disableUser``: the user can no longer log in nor use its keys; its account is untouched."""
    _check_not_system_user(user, "disabling")
    user.state = USER_DISABLED
    session.flush()
    return user


def enable_user(session: Session, user: User) -> User:
    """``enableUser``: the user, and its account with it (as upstream), are enabled; failed logins reset."""
    _check_not_system_user(user, "enabling")
    user.state = USER_ENABLED
    user.incorrect_login_attempts = 0
    account = user.account
    account.state = USER_ENABLED
    account.cleanup_needed = False
    session.flush()
    return user


def lock_user(session: Session, user: User) -> User:
    """``lockUser``: an enabled user becomes locked (a locked one stays so); when no user of the
    account is left enabled, an enabled account is locked too. A disabled user cannot be locked."""
    if user.account_id == SYSTEM_ACCOUNT_ID:
        raise PermissionDenied(f"user: {user.username} ({user.uuid}) is a system user, locking is not allowed")
    if user.state == USER_LOCKED:
        return user
    if user.state != USER_ENABLED:
        raise CloudRuntimeError(f"Unable to lock user {user.username} ({user.uuid}): it is {user.state}")
    user.state = USER_LOCKED
    session.flush()
    still_enabled = session.scalar(select(func.count()).select_from(User).where(
        User.account_id == user.account_id, User.removed.is_(None), User.state == USER_ENABLED)) or 0
    account = user.account
    if not still_enabled and account.state == USER_ENABLED:
        account.state = USER_LOCKED
    session.flush()
    return user


def delete_user(session: Session, user: User) -> None:
    """``deleteUser``: a soft delete; the built-in users (``default`` = 1) cannot be removed."""
    if user.default or user.account_id == SYSTEM_ACCOUNT_ID:
        raise InvalidParameterValue("The user is default and can't be (re)moved")
    user.removed = utcnow()
    session.flush()


# ------------------------------------------------------------------ resource counts of accounts and domains
#: The resource families AccountResponse and DomainResponse show as ``<family>limit``,
#: ``<family>total`` and ``<family>available`` (upstream's ResourceType names, as the UI reads them).
RESOURCE_FAMILIES = ("vm", "ip", "volume", "snapshot", "template", "project", "network", "vpc", "cpu", "memory",
                     "primarystorage", "secondarystorage", "backup", "backupstorage", "bucket", "objectstorage",
                     "gpu")
#: No resource limit is enforced here, so every limit, and what is left of it, is unlimited.
UNLIMITED = "Unlimited"
_GIB = 1024 ** 3
#: Volume states that no longer count against an account, as upstream (a destroyed volume stops counting
#: until it is recovered).
_UNCOUNTED_VOLUME_STATES = ("Destroy", "Expunging", "Expunged")


def _counted_volumes() -> object:
    return Volume.removed.is_(None) & (Volume.state.is_(None) | Volume.state.not_in(_UNCOUNTED_VOLUME_STATES))


def resource_fields(volumes: int = 0, volume_bytes: int = 0) -> dict[str, object]:
    """The resource-count fields: what exists is counted (volumes and their primary storage, in whole
    GiB as upstream); the other resource kinds do not exist here, so their totals are 0."""
    fields: dict[str, object] = {}
    for family in RESOURCE_FAMILIES:
        fields[f"{family}limit"] = UNLIMITED
        fields[f"{family}total"] = 0
        fields[f"{family}available"] = UNLIMITED
    fields["volumetotal"] = volumes
    fields["primarystoragetotal"] = volume_bytes // _GIB
    fields["secondarystoragetotal"] = 0.0
    return fields


def account_resource_usage(session: Session, accounts: list[Account]) -> dict[int, dict[str, object]]:
    """:func:`resource_fields` of each account, by account id (the volumes it owns that still count)."""
    usage = {a.id: (0, 0) for a in accounts}
    if accounts:
        rows = session.execute(select(Volume.account_id, func.count(), func.coalesce(func.sum(Volume.size), 0))
                               .where(Volume.account_id.in_(list(usage)), _counted_volumes())
                               .group_by(Volume.account_id))
        for account_id, count, size in rows:
            usage[account_id] = (int(count), int(size))
    return {account_id: resource_fields(*counts) for account_id, counts in usage.items()}


def domain_resource_usage(session: Session, domains: list[Domain]) -> dict[int, dict[str, object]]:
    """:func:`resource_fields` of each domain, by domain id: the counted volumes of its whole subtree."""
    result = {}
    for domain in domains:
        count, size = session.execute(
            select(func.count(), func.coalesce(func.sum(Volume.size), 0))
            .select_from(Volume).join(Domain, Volume.domain_id == Domain.id)
            .where(_counted_volumes(), Domain.path.startswith(domain.path, autoescape=True))).one()
        result[domain.id] = resource_fields(int(count), int(size))
    return result


def wants_resource_fields(details: list[str] | None) -> bool:
    """``details`` of listAccounts/listDomains: ``min`` alone leaves the resource fields out."""
    return not details or "all" in details or "resource" in details
