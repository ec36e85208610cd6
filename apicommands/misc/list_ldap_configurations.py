"""``listLdapConfigurations``: the UI calls it after login; this server has no LDAP, so it is empty."""
from cloudstack_kms.api import declare as p
from cloudstack_kms.api.command import ALL_ROLES, ListCommand, ListResult, _ListParams
from cloudstack_kms.api.declare import Out, ResponseObject
from cloudstack_kms.api.listing import page_window


class LdapConfigurationResponse(ResponseObject):
    object_name = "LdapConfiguration"
    id = Out.uuid("the ID of the LDAP configuration")
    hostname = Out.string("name of the host running the ldap server")
    port = Out.integer("port the ldap server is running on")
    domainid = Out.uuid("linked domain")


class ListLdapConfigurations(ListCommand):
    api_name = "listLdapConfigurations"
    description = "Lists all LDAP configurations"
    roles = ALL_ROLES
    response = LdapConfigurationResponse
    response_name_override = "ldapconfigurationresponse"
    java_class = "org.apache.cloudstack.api.command.LdapListConfigurationCmd"

    class Params(_ListParams):
        hostname = p.string("Hostname")
        port = p.integer("Port")
        domainid = p.uuid("linked domain", related="listDomains")
        id = p.uuid("the ID of the LDAP configuration")
        listall = p.boolean("If set to true, and no domainid specified, list all LDAP configurations "
                            "irrespective of the linked domain", since="4.13.2")

    def execute(self) -> ListResult:
        page_window(self.args)
        return ListResult(LdapConfigurationResponse, [], 0)
