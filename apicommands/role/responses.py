"""The ``role`` response object."""
from typing import Any

from cloudstack_kms.api.declare import Out, ResponseObject
from cloudstack_kms.models import Role

#: Roles here are never disabled nor private: every role is ``enabled`` and public.
ROLE_STATE_ENABLED = "enabled"


class RoleResponse(ResponseObject):
    object_name = "role"
    id = Out.uuid("the ID of the role")
    name = Out.string("the name of the role")
    type = Out.string("the type of the role")
    description = Out.string("the description of the role")
    isdefault = Out.boolean("true if role is default, false otherwise")
    ispublic = Out.boolean("Indicates whether the role will be visible to all users (public) or only to root "
                           "admins (private). If this parameter is not specified during the creation of the role "
                           "its value will be defaulted to true (public).")
    state = Out.string("the state of the role")


def role_view(role: Role) -> dict[str, Any]:
    return {"id": role.uuid, "name": role.name, "type": role.role_type, "description": role.description,
            "isdefault": bool(role.is_default), "ispublic": True, "state": ROLE_STATE_ENABLED}
