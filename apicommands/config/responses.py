"""The ``configuration`` response object."""
from cloudstack_kms.api.declare import Out, ResponseObject
from cloudstack_kms.models import Configuration
from cloudstack_kms.services.settings import KEYS

from .groups import group_of, parent_of


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


def configuration_view(row: Configuration, scope: str | None = None) -> dict:
    """``scope``: the scope a value was asked for (``zone``, ``account``, ``domain``), if any."""
    key = KEYS.get(row.name)
    group, subgroup = group_of(row.name)
    # As upstream, a setting with a kind (Select, Order, CSV ...) shows the kind as its type: the
    # web UI picks the edit control (a drop-down for Select) from it.
    value_type = row.kind or (key.type_name if key else "String")
    return {"name": row.name, "value": row.value, "defaultvalue": row.default_value, "category": row.category,
            "description": row.description, "scope": scope, "isdynamic": bool(row.is_dynamic),
            "component": row.component, "group": group, "subgroup": subgroup, "parent": parent_of(row.name),
            "displaytext": display_text(row), "type": value_type, "options": row.options}


def display_text(row: Configuration) -> str:
    """The setting's display text; where none was written (or just the key), upstream's form:
    the key with spaces for dots, capitalised (``Kms dek size bits``)."""
    if row.display_text and row.display_text != row.name:
        return row.display_text
    words = row.name.replace(".", " ")
    return words[:1].upper() + words[1:].lower()
