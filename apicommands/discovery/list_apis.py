"""``listApis``: generated from the command declarations, filtered by the caller's role."""
from typing import Any

from marshmallow import fields

from cloudstack_kms.api import declare as p
from cloudstack_kms.api.command import ALL_ROLES, BaseParams, Command, ListResult
from cloudstack_kms.api.declare import Out, ResponseObject


class ApiParameterResponse(ResponseObject):
    name = Out.string("the name of the api parameter")
    description = Out.string("description of the api parameter")
    type = Out.string("parameter type")
    length = Out.integer("length of the parameter")
    required = Out.boolean("true if this parameter is required for the api request")
    since = Out.string("version of CloudStack the api was introduced in")
    related = Out.string("comma separated related apis to get the parameter")


class ApiResponseResponse(ResponseObject):
    name = Out.string("the name of the api response field")
    description = Out.string("description of the api response field")
    type = Out.string("response field type")
    response = Out.list("api response fields")


class ApiResponse(ResponseObject):
    object_name = "api"
    name = Out.string("the name of the api command")
    description = Out.string("description of the api")
    since = Out.string("version of CloudStack the api was introduced in")
    isasync = Out.boolean("true if api is asynchronous")
    related = Out.string("comma separated related apis")
    params = Out.list("the list params the api accepts", ApiParameterResponse)
    response = Out.list("api response fields", ApiResponseResponse)


def describe_params(cmd: type[Command]) -> list[dict[str, Any]]:
    out = []
    for name, field in sorted(cmd.param_fields().items()):
        meta = field.metadata
        entry = {"name": name, "description": meta.get("description") or name, "type": meta["type"],
                 "length": meta.get("length") or 255, "required": bool(field.required)}
        if meta.get("since"):
            entry["since"] = meta["since"]
        if meta.get("related"):
            entry["related"] = meta["related"]
        out.append(entry)
    return out


def describe_response(response: type[ResponseObject] | None, role: str) -> list[dict[str, Any]]:
    if response is None:
        return [{"name": "success", "description": "true if operation is executed successfully",
                 "type": "boolean"},
                {"name": "displaytext", "description": "any text associated with the success or failure",
                 "type": "string"}]
    out = []
    for name, field in sorted(response._declared_fields.items()):
        meta = field.metadata
        if meta.get("roles") is not None and role not in meta["roles"]:
            continue
        entry: dict[str, Any] = {"name": name, "description": meta.get("description") or name,
                                 "type": meta.get("type", "string")}
        if isinstance(field, fields.List) and isinstance(field.inner, fields.Nested):
            entry["response"] = describe_response(field.inner.schema.__class__, role)
        out.append(entry)
    return out


def describe(cmd: type[Command], role: str) -> dict[str, Any]:
    api: dict[str, Any] = {"name": cmd.api_name, "description": cmd.description, "isasync": cmd.is_async,
                           "params": describe_params(cmd), "response": describe_response(cmd.response, role)}
    if cmd.since:
        api["since"] = cmd.since
    if cmd.related:
        api["related"] = cmd.related
    return api


class ListApis(Command):
    api_name = "listApis"
    description = "lists all available apis on the server, provided by the Api Discovery plugin"
    since = "4.1.0"
    roles = ALL_ROLES
    response = ApiResponse
    java_class = "org.apache.cloudstack.api.command.user.discovery.ListApisCmd"
    read_only = True

    class Params(BaseParams):
        name = p.string("API name")

    def execute(self) -> ListResult:
        role = self.ctx.role
        wanted = self.arg("name")
        apis = [describe(cmd, role) for cmd in self.ctx.state.registry
                if role in cmd.roles and (wanted is None or cmd.api_name == wanted)]
        return ListResult(ApiResponse, apis, len(apis))
