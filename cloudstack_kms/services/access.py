"""The one rule that decides whether a caller may act on another account, user or their resources.

Two questions, kept apart on purpose:

* **scope** (:func:`in_scope`, :func:`may_see`): is the target inside what the caller may
  look at? Root admins see everything, domain and resource admins their domain subtree,
  users their own account. List commands narrow by scope only, as upstream does.
* **acting** (:func:`may_act_on`, :func:`may_act_on_user`): may the caller change, delete,
  use or read the secrets of the target? Scope alone is not enough: a domain admin in ROOT
  has the root admin's account in scope, yet must never read its keys or use its KMS keys.
  So, besides scope, the target's role must rank strictly below the caller's
  (root admin > resource admin > domain admin > user), unless the target is the caller's
  own account.

Every command that acts on something it did not create for the caller goes through
:func:`check_may_act_on` (or the user form); the role-matrix test
(``tests/apicommands/test_role_matrix.py``) holds each command to it.
"""
from __future__ import annotations

from ..errors import PermissionDenied
from ..models import Account, Domain, User
from ..models.tenancy import ROLE_ADMIN, ROLE_DOMAIN_ADMIN, ROLE_RESOURCE_ADMIN, ROLE_USER

# CloudStack's RoleType ids: a smaller number is a more powerful role type.
_ROLE_RANK = {ROLE_ADMIN: 1, ROLE_RESOURCE_ADMIN: 2, ROLE_DOMAIN_ADMIN: 4, ROLE_USER: 8}
_DOMAIN_SCOPED = (ROLE_DOMAIN_ADMIN, ROLE_RESOURCE_ADMIN)


def role_rank(role_type: str) -> int:
    """Unknown role types rank below every known one."""
    return _ROLE_RANK.get(role_type, 100)


def outranks(caller_role: str, target_role: str) -> bool:
    return role_rank(caller_role) < role_rank(target_role)


def is_subdomain(parent: Domain, child: Domain) -> bool:
    """``child`` is ``parent`` or below it. Paths end in ``/``, so ``/a/`` is no prefix of ``/ab/``."""
    return child.path.startswith(parent.path)


def in_scope(caller: Account, domain: Domain) -> bool:
    """May the caller name or look inside ``domain``? Users may name their own domain only."""
    if caller.role_type == ROLE_ADMIN:
        return True
    if caller.role_type in _DOMAIN_SCOPED:
        return is_subdomain(caller.domain, domain)
    return domain.id == caller.domain_id


def may_see(caller: Account, target: Account) -> bool:
    """Visibility, for lists and lookups that only read public fields."""
    if caller.id == target.id or caller.role_type == ROLE_ADMIN:
        return True
    return caller.role_type in _DOMAIN_SCOPED and is_subdomain(caller.domain, target.domain)


def may_act_on(caller: Account, target: Account) -> bool:
    """The rule: own account; or root admin; or in scope *and* of a strictly lower role."""
    if caller.id == target.id or caller.role_type == ROLE_ADMIN:
        return True
    if target.role_type == ROLE_ADMIN:
        return False
    return may_see(caller, target) and outranks(caller.role_type, target.role_type)


def may_act_on_user(caller: User, target: User) -> bool:
    """Credentials (keys, password) of one user. Another user of the caller's own account counts
    as a peer: only a root admin may touch it, so two domain admins sharing an account cannot
    take each other's keys either."""
    if caller.id == target.id or caller.account.role_type == ROLE_ADMIN:
        return True
    return caller.account_id != target.account_id and may_act_on(caller.account, target.account)


def _denied(caller: Account, target: Account) -> PermissionDenied:
    if may_see(caller, target):
        # In scope but not below the caller: say why, as upstream's role-escalation check does.
        return PermissionDenied(f"The calling account [{caller.account_name}, {caller.uuid}] has a role type that "
                                f"does not allow it to act on the account [{target.account_name}, {target.uuid}]")
    return PermissionDenied(f"Account {caller.account_name} does not have permission to operate within domain "
                            f"id={target.domain.uuid}")


def check_may_act_on(caller: Account, target: Account) -> None:
    if not may_act_on(caller, target):
        raise _denied(caller, target)


def check_may_act_on_user(caller: User, target: User) -> None:
    if not may_act_on_user(caller, target):
        raise _denied(caller.account, target.account)


def check_may_see(caller: Account, target: Account) -> None:
    if not may_see(caller, target):
        raise _denied(caller, target)


def check_in_scope(caller: Account, domain: Domain) -> None:
    if not in_scope(caller, domain):
        raise PermissionDenied(f"Account {caller.account_name} does not have permission to operate within domain "
                               f"id={domain.uuid}")
