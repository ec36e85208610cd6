"""``updateConfiguration`` (root admin): typed and validated by the key's declaration."""
from cloudstack_kms.api import declare as p
from cloudstack_kms.api.command import BaseParams, Command, ObjectResult
from cloudstack_kms.errors import InvalidParameterValue
from cloudstack_kms.models import Configuration
from cloudstack_kms.models.base import utcnow
from cloudstack_kms.services.settings import KEYS

from .responses import ConfigurationResponse, configuration_view


class UpdateConfiguration(Command):
    api_name = "updateConfiguration"
    description = "Updates a configuration."
    response = ConfigurationResponse
    related = "listConfigurations"
    event_type = "CONFIGURATION.VALUE.EDIT"
    java_class = "org.apache.cloudstack.api.command.admin.config.UpdateCfgCmd"

    class Params(BaseParams):
        name = p.string("the name of the configuration", required=True)
        value = p.string("the value of the configuration", length=4096)
        zoneid = p.uuid("the ID of the Zone to update the parameter value for corresponding zone",
                        related="listZones")
        accountid = p.uuid("the ID of the Account to update the parameter value for corresponding account",
                           related="listAccounts")
        domainid = p.uuid("the ID of the Domain to update the parameter value for corresponding domain",
                          related="listDomains")

    def execute(self) -> ObjectResult:
        name = self.args["name"]
        row = self.ctx.session.get(Configuration, name)
        if row is None:
            raise InvalidParameterValue(f"Config parameter with name {name} doesn't exist")
        if any(self.arg(k) for k in ("zoneid", "accountid", "domainid")):
            raise InvalidParameterValue(f"Invalid scope id provided for the parameter {name}")
        value = self.arg("value")
        if value is None:
            raise InvalidParameterValue(f"The new value for the [{name}] configuration must be given.")
        key = KEYS.get(name)
        if key is not None:
            try:
                value = key.normalise(value)
            except ValueError as exc:
                raise InvalidParameterValue(str(exc)) from None
        row.value = value
        row.updated = utcnow()
        return ObjectResult(ConfigurationResponse, configuration_view(row))

    def event_description(self) -> str:
        return f" Name: {self.args['name']}, New Value: {self.arg('value')}"
