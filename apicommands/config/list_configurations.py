"""``listConfigurations`` (root admin)."""
from sqlalchemy import select

from cloudstack_kms.api import declare as p
from cloudstack_kms.api.command import ListCommand, ListResult, _ListParams
from cloudstack_kms.errors import InvalidParameterValue
from cloudstack_kms.api.listing import keyword_filter, max_page_size, page_window
from cloudstack_kms.models import Account, Configuration, DataCenter, Domain

from .groups import find_group, group_of, parent_of
from .responses import ConfigurationResponse, configuration_view

#: Scope parameters: (scope name shown in the answer, scope bit of ``configuration.scope``).
SCOPES = {"zoneid": ("zone", 2), "domainid": ("domain", 64), "accountid": ("account", 128)}


class ListConfigurations(ListCommand):
    api_name = "listConfigurations"
    description = "Lists all configurations."
    response = ConfigurationResponse
    related = "updateConfiguration"
    java_class = "org.apache.cloudstack.api.command.admin.config.ListCfgsByCmd"

    class Params(_ListParams):
        name = p.string("lists configuration by name")
        category = p.string("lists configurations by category")
        zoneid = p.uuid("the ID of the Zone to update the parameter value for corresponding zone",
                        entity=DataCenter, related="listZones")
        accountid = p.uuid("the ID of the Account to update the parameter value for corresponding account",
                           entity=Account, related="listAccounts")
        domainid = p.uuid("the ID of the Domain to update the parameter value for corresponding domain",
                          entity=Domain, related="listDomains")
        group = p.string("lists configuration by group name (primarily used for UI)", since="4.18.0")
        subgroup = p.string("lists configuration by subgroup name (primarily used for UI)", since="4.18.0")
        parent = p.string("lists configuration by parent name (primarily used for UI)", since="4.18.0")

    def execute(self) -> ListResult:
        if self.arg("subgroup") and not self.arg("group"):
            raise InvalidParameterValue("Configuration group name must be specified with the subgroup name")
        scopes = [k for k in SCOPES if self.arg(k)]
        if len(scopes) > 1:
            raise InvalidParameterValue("cannot handle multiple IDs, provide only one ID corresponding to the scope")
        offset, limit = page_window(self.args, max_page_size(self.ctx.session))
        group_name, subgroup_name = self.arg("group"), self.arg("subgroup")
        if group_name:
            group = find_group(group_name)
            if group is None:
                raise InvalidParameterValue(f"Invalid configuration group: {group_name}")
            if subgroup_name and not any(s.name.lower() == subgroup_name.lower() for s in group.subgroups):
                raise InvalidParameterValue(f"Invalid configuration subgroup: {subgroup_name}")
            offset, limit = 0, None  # as upstream, a group is listed whole
        stmt = select(Configuration).where(Configuration.category != "Hidden")
        stmt = keyword_filter(stmt, self.args, Configuration.name, param="name")
        if self.arg("category"):
            stmt = stmt.where(Configuration.category == self.args["category"])
        stmt = keyword_filter(stmt, self.args, Configuration.name, Configuration.description, Configuration.component,
                              Configuration.category, Configuration.value)
        rows = list(self.ctx.session.scalars(stmt.order_by(Configuration.name)))
        scope = None
        if scopes:
            # Only the settings that may be set for that kind of object; none is stored per object
            # here, so each shows the value it inherits (the global one).
            scope, bit = SCOPES[scopes[0]]
            rows = [r for r in rows if r.scope & bit]
        if group_name:
            rows = [r for r in rows if self._in_group(r.name, group_name, subgroup_name)]
        if self.arg("parent"):
            rows = [r for r in rows if parent_of(r.name) == self.args["parent"]]
        page = rows[offset:] if limit is None else rows[offset:offset + limit]
        return ListResult(ConfigurationResponse, [configuration_view(r, scope) for r in page], len(rows))

    @staticmethod
    def _in_group(name: str, group_name: str, subgroup_name: str | None) -> bool:
        group, subgroup = group_of(name)
        if group.lower() != group_name.lower():
            return False
        return not subgroup_name or subgroup.lower() == subgroup_name.lower()
