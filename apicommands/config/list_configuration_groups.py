"""``listConfigurationGroups`` (root admin): the tabs of the web UI's Global Settings page.

Only the groups and subgroups that hold at least one of this server's settings are listed
(each group then has a subgroup, which the page needs), in upstream's order (precedence).
"""
from sqlalchemy import select

from cloudstack_kms.api import declare as p
from cloudstack_kms.api.command import ListCommand, ListResult, _ListParams
from cloudstack_kms.api.declare import Out, ResponseObject
from cloudstack_kms.api.listing import max_page_size, page_window
from cloudstack_kms.models import Configuration

from .groups import GROUPS, group_of


class ConfigurationSubGroupResponse(ResponseObject):
    name = Out.string("The name of the configuration subgroup")
    precedence = Out.long("The precedence of the configuration subgroup")


class ConfigurationGroupResponse(ResponseObject):
    object_name = "configurationgroup"
    name = Out.string("The name of the configuration group")
    subgroup = Out.list("The subgroups of the configuration group", ConfigurationSubGroupResponse)
    description = Out.string("The description of the configuration group")
    precedence = Out.long("The precedence of the configuration group")


class ListConfigurationGroups(ListCommand):
    api_name = "listConfigurationGroups"
    description = "Lists all configuration groups (primarily used for UI)."
    since = "4.17.0"
    response = ConfigurationGroupResponse
    related = "listConfigurations"
    java_class = "org.apache.cloudstack.api.command.admin.config.ListCfgGroupsByCmd"

    class Params(_ListParams):
        group = p.string("lists configuration group by group name")

    def execute(self) -> ListResult:
        offset, limit = page_window(self.args, max_page_size(self.ctx.session))
        used = {group_of(name) for name in self.ctx.session.scalars(
            select(Configuration.name).where(Configuration.category != "Hidden"))}
        items = []
        for group in sorted(GROUPS, key=lambda g: g.precedence):
            if self.arg("group") and group.name.lower() != self.args["group"].lower():
                continue
            subgroups = [{"name": s.name, "precedence": s.precedence}
                         for s in sorted(group.subgroups, key=lambda s: s.precedence) if (group.name, s.name) in used]
            if not subgroups:
                continue
            if self.arg("keyword") and not self._matches(self.args["keyword"], group.name, subgroups):
                continue
            items.append({"name": group.name, "subgroup": subgroups, "description": group.description,
                          "precedence": group.precedence})
        page = items[offset:] if limit is None else items[offset:offset + limit]
        return ListResult(ConfigurationGroupResponse, page, len(items))

    @staticmethod
    def _matches(keyword: str, group: str, subgroups: list[dict]) -> bool:
        text = keyword.lower()
        return text in group.lower() or any(text in s["name"].lower() for s in subgroups)
