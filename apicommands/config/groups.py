"""Where each global setting is shown in the web UI: its group and subgroup.

The catalogue is upstream's (names, descriptions and order are what the UI shows), plus a
``KMS`` subgroup under ``Storage`` for the key management settings. A setting belongs to the
subgroup matched by the first word of its name (split at dots) that is a subgroup's name or one
of its keywords; a setting nothing matches goes to Miscellaneous / Others, as upstream.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SubGroup:
    name: str
    precedence: int
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True)
class Group:
    name: str
    description: str
    precedence: int
    subgroups: tuple[SubGroup, ...]


MISCELLANEOUS, OTHERS = "Miscellaneous", "Others"

GROUPS: tuple[Group, ...] = (
    Group("Access", "Identity and Access management configuration", 1, (
        SubGroup("Account", 1), SubGroup("Domain", 2), SubGroup("Project", 3), SubGroup("LDAP", 4),
        SubGroup("SAML", 5, ("saml2",)))),
    Group("Compute", "Compute configuration", 2, (
        SubGroup("Virtual Machine", 1, ("vm", "instance", "cpu", "ssh", "affinity")),
        SubGroup("Kubernetes", 2, ("kubernetes",)), SubGroup("High Availability", 3, ("ha",)))),
    Group("Storage", "Storage configuration", 3, (
        SubGroup("Images", 1, ("template", "iso")), SubGroup("Volume", 2, ("disk", "diskoffering")),
        SubGroup("Snapshot", 3), SubGroup("VM Snapshot", 4, ("vmsnapshot",)),
        # Not upstream's: the key management settings (kms.*) of this server.
        SubGroup("KMS", 5, ("kms",)))),
    Group("Network", "Network configuration", 4, (
        SubGroup("Network", 1, ("firewall", "vlan", "dns", "globodns", "ipaddress", "cidr")),
        SubGroup("DHCP", 2, ("externaldhcp",)), SubGroup("VPC", 3), SubGroup("LoadBalancer", 4, ("lb", "gslb")))),
    Group("Hypervisor", "Hypervisor specific configuration", 5, (
        SubGroup("Hypervisor", 1, ("host",)), SubGroup("KVM", 2, ("libvirt",)), SubGroup("VMware", 3, ("vcenter",)),
        SubGroup("XenServer", 4, ("xen", "xapi", "xcp")), SubGroup("OVM", 5, ("ovm3",)),
        SubGroup("Baremetal", 6))),
    Group("Management Server", "Management Server configuration", 6, (
        SubGroup("API", 1), SubGroup("Alerts", 2, ("alert",)), SubGroup("Events", 3, ("event",)),
        SubGroup("Security", 4, ("secure", "password", "authenticators")), SubGroup("Usage", 5),
        SubGroup("Limits", 6, ("capacity", "delay", "interval", "workers")), SubGroup("Jobs", 7, ("job",)),
        SubGroup("Agent", 8))),
    Group("System VMs", "System VMs related configuration", 7, (
        SubGroup("ConsoleProxyVM", 1, ("cpvm", "consoleproxy", "novnc")),
        SubGroup("SecStorageVM", 2, ("ssvm", "secondary")), SubGroup("VirtualRouter", 3, ("vr", "router", "vrouter")),
        SubGroup("Diagnostics", 4))),
    Group("Infrastructure", "Infrastructure configuration", 8, (
        SubGroup("Primary Storage", 1, ("storage", "pool", "primary")),
        SubGroup("Secondary Storage", 2, ("image", "secstorage")))),
    Group(MISCELLANEOUS, "Miscellaneous configuration", 999, (
        SubGroup("Backup & Recovery", 1, ("backup", "recovery", "veeam")),
        SubGroup("Certificate Authority", 2, ("ca",)), SubGroup("Quota", 3), SubGroup("Cloudian", 4),
        SubGroup("DRS", 4, ("drs",)), SubGroup(OTHERS, 999))),
)


def group_of(name: str) -> tuple[str, str]:
    """(group, subgroup) of the setting called ``name``."""
    for word in name.lower().split("."):
        for group in GROUPS:
            for sub in group.subgroups:
                if word == sub.name.lower():
                    return group.name, sub.name
        for group in GROUPS:
            for sub in group.subgroups:
                if word in sub.keywords:
                    return group.name, sub.name
    return MISCELLANEOUS, OTHERS


def find_group(name: str) -> Group | None:
    """The group called ``name`` (case-insensitively), as the UI and upstream compare names."""
    return next((g for g in GROUPS if g.name.lower() == name.lower()), None)


def parent_of(name: str) -> str | None:
    """The setting ``name`` is nested under in the UI; no setting of this server has one."""
    return None
