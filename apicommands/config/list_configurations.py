"""``listConfigurations`` (root admin)."""
from sqlalchemy import or_, select

from cloudstack_kms.api import declare as p
from cloudstack_kms.api.command import ListCommand, ListResult, _ListParams
from cloudstack_kms.api.errors import InvalidParameterValue
from cloudstack_kms.api.listing import paged
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
        if self.arg("name"):
            stmt = stmt.where(Configuration.name.like(f"%{self.args['name']}%"))
        if self.arg("category"):
            stmt = stmt.where(Configuration.category == self.args["category"])
        if self.arg("keyword"):
            pattern = f"%{self.args['keyword']}%"
            stmt = stmt.where(or_(Configuration.name.like(pattern), Configuration.description.like(pattern),
                                  Configuration.component.like(pattern), Configuration.category.like(pattern),
                                  Configuration.value.like(pattern)))
        rows, total = paged(self.ctx.session, stmt, self.args, Configuration.name)
        return ListResult(ConfigurationResponse, [configuration_view(r) for r in rows], total)
