"""Who may see and act on whose resources, for commands: the rule itself lives in
:mod:`cloudstack_kms.services.access` (scope and role rank); these are its forms that take
the call context.

List commands narrow what they return with :func:`list_scope`, following CloudStack's
``listall``/``isrecursive``/``account`` rules (scope only: listing is not acting).
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select

from ..models import Account, Domain, User
from ..services import access
from .context import CallContext
from ..errors import InvalidParameterValue, PermissionDenied


def can_access_domain(ctx: CallContext, domain: Domain) -> bool:
    return access.in_scope(ctx.account, domain)


def can_see_account(ctx: CallContext, account: Account) -> bool:
    return access.may_see(ctx.account, account)


def can_act_on_account(ctx: CallContext, account: Account) -> bool:
    return access.may_act_on(ctx.account, account)


def check_account_access(ctx: CallContext, account: Account) -> None:
    """Acting on ``account`` or what it owns: scope and role rank (:mod:`cloudstack_kms.services.access`)."""
    access.check_may_act_on(ctx.account, account)


def check_user_access(ctx: CallContext, user: User) -> None:
    """Acting on one user's credentials."""
    access.check_may_act_on_user(ctx.user, user)


def check_account_visible(ctx: CallContext, account: Account) -> None:
    """Naming ``account`` in a list filter: scope only."""
    access.check_may_see(ctx.account, account)


def check_domain_access(ctx: CallContext, domain: Domain) -> None:
    access.check_in_scope(ctx.account, domain)


def find_account(ctx: CallContext, name: str, domain: Domain) -> Account:
    account = ctx.session.scalars(
        select(Account).where(Account.account_name == name, Account.domain_id == domain.id,
                              Account.removed.is_(None))).first()
    if account is None:
        raise InvalidParameterValue(f"Unable to find account {name} in domain id={domain.uuid}")
    return account


def resolve_owner(ctx: CallContext, args: dict[str, Any]) -> Account:
    """The account a create command acts for: ``account``+``domainid``, or the caller.

    Only admins may act for another account; ``account`` needs ``domainid``.
    """
    name = args.get("account")
    domain: Domain | None = args.get("domainid")
    if name is None and domain is None:
        return ctx.account
    if name is not None and domain is None:
        raise InvalidParameterValue("Account name and domain id must be specified together")
    if name is None:
        if domain is not None and domain.id == ctx.account.domain_id:
            return ctx.account
        raise InvalidParameterValue("Account name and domain id must be specified together")
    if not ctx.is_admin:
        if name == ctx.account.account_name and domain.id == ctx.account.domain_id:
            return ctx.account
        raise PermissionDenied(f"Account {ctx.account.account_name} does not have permission to act for account {name}")
    check_domain_access(ctx, domain)
    account = find_account(ctx, name, domain)
    check_account_access(ctx, account)
    return account


def list_scope(ctx: CallContext, stmt: Select, account_col: Any, domain_col: Any, args: dict[str, Any]) -> Select:
    """Narrow ``stmt`` to what the caller asked for and may see.

    * ``listall`` false (the default): only the caller's own resources, even for admins,
      unless ``domainid``/``account`` name another scope.
    * ``listall`` true: everything the caller may see (root: all; domain admin: subtree).
    * ``domainid`` (+ ``isrecursive``): that domain, or its subtree.
    * ``account`` + ``domainid``: that account.
    """
    domain: Domain | None = args.get("domainid")
    name = args.get("account")
    recursive = bool(args.get("isrecursive"))
    listall = bool(args.get("listall"))

    if name is not None and domain is None:
        domain = ctx.domain  # upstream looks the account up in the caller's own domain
    if domain is not None:
        check_domain_access(ctx, domain)
    if not ctx.is_admin:
        # Users only ever see their own account's resources.
        if name is not None and name != ctx.account.account_name:
            raise PermissionDenied(f"Account {ctx.account.account_name} does not have permission to list account {name}")
        return stmt.where(account_col == ctx.account.id)
    if name is not None:
        account = find_account(ctx, name, domain)  # type: ignore[arg-type]
        check_account_visible(ctx, account)
        return stmt.where(account_col == account.id)
    if domain is not None:
        if recursive or listall:
            sub = select(Domain.id).where(Domain.path.startswith(domain.path, autoescape=True), Domain.removed.is_(None))
            return stmt.where(domain_col.in_(sub))
        return stmt.where(domain_col == domain.id)
    if listall:
        if ctx.is_root_admin:
            return stmt
        sub = select(Domain.id).where(Domain.path.startswith(ctx.domain.path, autoescape=True))
        return stmt.where(domain_col.in_(sub))
    return stmt.where(account_col == ctx.account.id)
