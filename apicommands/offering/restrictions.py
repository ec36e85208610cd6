"""The zones and domains a disk offering is limited to (``createDiskOffering`` ``zoneid``/``domainid``).

Stored as upstream stores them, as ``disk_offering_details`` named ``zoneid`` and ``domainid``
(one row per id). No ``zoneid`` row: every zone. No ``domainid`` row: a public offering.

Who may use an offering (upstream's DomainChecker): root admins any; other accounts a public one
or one limited to their domain or a domain above it. And only in one of its zones.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Select, String, cast, exists, not_, or_, select
from sqlalchemy.orm import Session

from cloudstack_kms.db import cache_of
from cloudstack_kms.errors import PermissionDenied
from cloudstack_kms.models import Account, DataCenter, Domain
from cloudstack_kms.models.tenancy import ROLE_ADMIN
from cloudstack_kms.models.volume import DiskOffering, DiskOfferingDetail

ZONE, DOMAIN = "zoneid", "domainid"


def set_limits(session: Session, offering: DiskOffering, zones: Iterable[DataCenter],
               domains: Iterable[Domain]) -> None:
    for name, rows in ((ZONE, zones), (DOMAIN, domains)):
        for row_id in dict.fromkeys(r.id for r in rows):  # once each, in the order given
            session.add(DiskOfferingDetail(offering_id=offering.id, name=name, value=str(row_id), display=True))
    session.flush()


def domain_and_parents(domain: Domain) -> list[str]:
    """The paths of ``domain`` and of every domain above it (``/a/b/`` → ``/``, ``/a/``, ``/a/b/``)."""
    parts = [p for p in domain.path.strip("/").split("/") if p]
    return ["/"] + ["/" + "/".join(parts[:i]) + "/" for i in range(1, len(parts) + 1)]


def _limited(name: str, values: Any) -> Any:
    return exists().where(DiskOfferingDetail.offering_id == DiskOffering.id, DiskOfferingDetail.name == name,
                          DiskOfferingDetail.value.in_(values))


def _unlimited(name: str) -> Any:
    return not_(exists().where(DiskOfferingDetail.offering_id == DiskOffering.id, DiskOfferingDetail.name == name))


def usable_by(stmt: Select, account: Account, below: bool = False) -> Select:
    """Offerings ``account`` may use: all for a root admin; else public ones and those limited to its
    domain or one above it (``below``: also those of domains under its own, a domain admin's
    ``isrecursive`` view)."""
    if account.role_type == ROLE_ADMIN:
        return stmt
    domains = Domain.path.in_(domain_and_parents(account.domain))
    if below:
        domains = or_(domains, Domain.path.startswith(account.domain.path, autoescape=True))
    # The detail's value is text: compare it with the ids as text.
    ids = select(cast(Domain.id, String(40))).where(domains, Domain.removed.is_(None))
    return stmt.where(or_(_unlimited(DOMAIN), _limited(DOMAIN, ids)))


def in_zone(stmt: Select, zone: DataCenter) -> Select:
    return stmt.where(or_(_unlimited(ZONE), _limited(ZONE, [str(zone.id)])))


def of_domain(stmt: Select, domain: Domain, recursive: bool = False) -> Select:
    """Offerings limited to exactly ``domain`` (upstream's ``domainid`` filter without ``account``), or
    with ``recursive`` to it or a domain under it."""
    if not recursive:
        return stmt.where(_limited(DOMAIN, [str(domain.id)]))
    subtree = select(cast(Domain.id, String(40))).where(Domain.path.startswith(domain.path, autoescape=True),
                                                        Domain.removed.is_(None))
    return stmt.where(_limited(DOMAIN, subtree))


#: Offerings found usable, per (offering, zone, role, domain), kept this long per process: every
#: createVolume asks, and the question costs a statement that is dear to build. A limit added through
#: another server applies within this time (through this process: at once, see ``Database.watch``).
USABLE_TTL_SEC = 1.0


def check_usable(session: Session, offering: DiskOffering, owner: Account, zone: DataCenter) -> None:
    """Upstream's DomainChecker for a volume of ``owner`` in ``zone``. Only "usable" is cached: a
    refusal is decided afresh each time."""
    cache = cache_of(session, "offerings.usable", USABLE_TTL_SEC, (DiskOffering, DiskOfferingDetail, Domain),
                     max_entries=1024)
    verdict = (offering.id, zone.id, owner.role_type, owner.domain_id)
    if cache is not None and cache.get(verdict) is True:
        return
    stmt = in_zone(usable_by(select(DiskOffering.id).where(DiskOffering.id == offering.id), owner), zone)
    if session.scalar(stmt) is not None:
        if cache is not None:
            cache.get_or_load(verdict, lambda: True)
        return
    raise PermissionDenied(f"Disk offering {offering.name} ({offering.uuid}) is not available to account "
                           f"{owner.account_name} in zone {zone.name}")


def limits(session: Session, offerings: list[DiskOffering]) -> dict[int, dict[str, list[Any]]]:
    """For each offering, the zone and domain rows it is limited to (empty lists: unlimited)."""
    found: dict[int, dict[str, list[Any]]] = {o.id: {ZONE: [], DOMAIN: []} for o in offerings}
    if not offerings:
        return found
    details = list(session.scalars(select(DiskOfferingDetail).where(
        DiskOfferingDetail.offering_id.in_(found), DiskOfferingDetail.name.in_((ZONE, DOMAIN)))
        .order_by(DiskOfferingDetail.id)))
    zone_ids = {int(d.value) for d in details if d.name == ZONE}
    domain_ids = {int(d.value) for d in details if d.name == DOMAIN}
    zones = {z.id: z for z in session.scalars(select(DataCenter).where(DataCenter.id.in_(zone_ids)))} if zone_ids \
        else {}
    domains = {d.id: d for d in session.scalars(select(Domain).where(Domain.id.in_(domain_ids)))} if domain_ids \
        else {}
    for detail in details:
        row = (zones if detail.name == ZONE else domains).get(int(detail.value))
        if row is not None:
            found[detail.offering_id][detail.name].append(row)
    return found
