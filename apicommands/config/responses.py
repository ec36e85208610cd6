"""The ``configuration`` response object."""
from cloudstack_kms.api.declare import Out, ResponseObject
from cloudstack_kms.models import Configuration
from cloudstack_kms.services.settings import KEYS


class ConfigurationResponse(ResponseObject):
    object_name = "configuration"
    name = Out.string("the name of the configuration")
    value = Out.string("the value of the configuration")
    defaultvalue = Out.string("the default value of the configuration")
    category = Out.string("the category of the configuration")
    description = Out.string("the description of the configuration")
    scope = Out.string("scope(zone/cluster/pool/account) of the parameter that needs to be updated")
    isdynamic = Out.boolean("true if the configuration is dynamic")
    component = Out.string("the component of the configuration")
    group = Out.string("the group of the configuration")
    subgroup = Out.string("the subgroup of the configuration")
    parent = Out.string("the name of the parent configuration")
    displaytext = Out.string("the display text of the configuration")
    type = Out.string("the type of the configuration value")
    options = Out.string("the possible options of the configuration value")


def configuration_view(row: Configuration) -> dict:
    key = KEYS.get(row.name)
    return {"name": row.name, "value": row.value, "defaultvalue": row.default_value, "category": row.category,
            "description": row.description, "isdynamic": bool(row.is_dynamic), "component": row.component,
            "group": "Miscellaneous", "subgroup": "Others", "displaytext": row.display_text,
            "type": key.type_name if key else "String", "options": row.options}
