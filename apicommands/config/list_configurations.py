"""``listConfigurations`` (root admin)."""
from sqlalchemy import select

from cloudstack_kms.api import declare as p
from cloudstack_kms.api.command import ListCommand, ListResult, _ListParams
from cloudstack_kms.api.errors import InvalidParameterValue
from cloudstack_kms.api.listing import keyword_filter, paged
from cloudstack_kms.models import Configuration

from .responses import ConfigurationResponse, configuration_view


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
                        related="listZones")
        accountid = p.uuid("the ID of the Account to update the parameter value for corresponding account",
                           related="listAccounts")
        domainid = p.uuid("the ID of the Domain to update the parameter value for corresponding domain",
                          related="listDomains")
        group = p.string("lists configuration by group name (primarily used for UI)", since="4.18.0")
        subgroup = p.string("lists configuration by subgroup name (primarily used for UI)", since="4.18.0")
        parent = p.string("lists configuration by parent name (primarily used for UI)", since="4.18.0")

    def execute(self) -> ListResult:
        if self.arg("subgroup") and not self.arg("group"):
            raise InvalidParameterValue("Configuration group name must be specified with the subgroup name")
        if sum(1 for k in ("zoneid", "accountid", "domainid") if self.arg(k)) > 1:
            raise InvalidParameterValue("cannot handle multiple IDs, provide only one ID corresponding to the scope")
        stmt = select(Configuration).where(Configuration.category != "Hidden")
        stmt = keyword_filter(stmt, self.args, Configuration.name, param="name")
        if self.arg("category"):
            stmt = stmt.where(Configuration.category == self.args["category"])
        stmt = keyword_filter(stmt, self.args, Configuration.name, Configuration.description, Configuration.component,
                              Configuration.category, Configuration.value)
        rows, total = paged(self.ctx.session, stmt, self.args, Configuration.name)
        return ListResult(ConfigurationResponse, [configuration_view(r) for r in rows], total)
