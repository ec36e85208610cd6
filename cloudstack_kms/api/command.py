"""The command base classes and the registry that finds every declared command.

Each API is one class in ``apicommands/<area>/<snake_name>.py``. Its class attributes are
the whole declaration: name, description, ``since``, roles, parameters, response object,
event type. The dispatcher, the job runner, ``listApis`` and the log redactor all read it.

Base classes, as upstream:

* :class:`Command` runs in the request and answers at once.
* :class:`AsyncCommand` answers ``jobid`` at once and runs in a job worker.
* :class:`AsyncCreateCommand` first runs :meth:`create` in the request (so ``id`` can be
  answered with ``jobid``), then :meth:`execute` in the job.
* :class:`ListCommand` adds ``keyword``/``page``/``pagesize``; :class:`ListOwnedCommand`
  adds the account scope parameters.
"""
from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from marshmallow import EXCLUDE, Schema, fields

from ..models.tenancy import Domain, ROLE_ADMIN, ROLE_DOMAIN_ADMIN, ROLE_RESOURCE_ADMIN, ROLE_USER
from . import declare as p
from .declare import ResponseObject

if TYPE_CHECKING:
    from .context import CallContext

ALL_ROLES = frozenset({ROLE_ADMIN, ROLE_RESOURCE_ADMIN, ROLE_DOMAIN_ADMIN, ROLE_USER})
ADMINS = frozenset({ROLE_ADMIN, ROLE_RESOURCE_ADMIN, ROLE_DOMAIN_ADMIN})
ROOT_ONLY = frozenset({ROLE_ADMIN})


# ------------------------------------------------------------------ results
@dataclass
class ObjectResult:
    """``{"<response>": {"<object>": {...}}}``."""

    response: type[ResponseObject]
    data: dict[str, Any]


@dataclass
class ListResult:
    """``{"<response>": {"count": N, "<object>": [...]}}``; ``count`` is the total."""

    response: type[ResponseObject]
    items: list[dict[str, Any]]
    count: int


@dataclass
class SuccessResult:
    displaytext: str | None = None


@dataclass
class FlatResult:
    """Fields directly under the response name (login, queryAsyncJobResult, async submit)."""

    data: dict[str, Any] = field(default_factory=dict)


Result = ObjectResult | ListResult | SuccessResult | FlatResult


class SuccessResponse(ResponseObject):
    object_name = ""
    success = p.Out.boolean("true if operation is executed successfully")
    displaytext = p.Out.string("any text associated with the success or failure")


# ------------------------------------------------------------------ commands
class Command:
    """A synchronous API command. Subclasses set the declaration and :meth:`execute`."""

    api_name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    since: ClassVar[str | None] = None
    #: Role types allowed to call it; none declared means root admin only.
    roles: ClassVar[frozenset[str]] = ROOT_ONLY
    is_async: ClassVar[bool] = False
    requires_auth: ClassVar[bool] = True
    #: The response object (None: a success-only command).
    response: ClassVar[type[ResponseObject] | None] = None
    #: Override of ``<lowercase name>response`` for the few irregular upstream names.
    response_name_override: ClassVar[str | None] = None
    #: The upstream Java class, shown as a job's ``cmd``.
    java_class: ClassVar[str] = ""
    event_type: ClassVar[str | None] = None
    #: True when the command never writes: it then runs in a read-only transaction, which on
    #: SQLite does not wait for writers (list and query commands).
    read_only: ClassVar[bool] = False
    #: Names of other APIs returning the same response object (``related`` in listApis).
    related: ClassVar[str | None] = None
    #: Parameters: a marshmallow Schema subclass; its fields are the declaration.
    Params: ClassVar[type[Schema]]

    def __init__(self, ctx: "CallContext", args: dict[str, Any]) -> None:
        self.ctx = ctx
        self.args = args

    @classmethod
    def response_name(cls) -> str:
        return cls.response_name_override or f"{cls.api_name.lower()}response"

    @classmethod
    def param_fields(cls) -> dict[str, fields.Field]:
        return dict(cls.Params._declared_fields)

    @classmethod
    def params_schema(cls) -> Schema:
        """The command's parameter schema, built once: building one deep-copies every field, which
        cost more than the rest of a small request. Loading does not change a schema, so threads
        share it."""
        schema = cls.__dict__.get("_params_schema")
        if schema is None:
            schema = cls.Params()
            cls._params_schema = schema
        return schema

    @classmethod
    def sensitive_params(cls) -> set[str]:
        return {name for name, f in cls.param_fields().items() if f.metadata.get("sensitive")}

    def arg(self, name: str, default: Any = None) -> Any:
        value = self.args.get(name)
        return default if value is None else value

    def execute(self) -> Result:
        raise NotImplementedError

    def event_description(self) -> str:
        return f"{self.api_name}"


class AsyncCommand(Command):
    is_async = True
    #: ``jobinstancetype`` of the job (e.g. ``Volume``) and how to find the instance.
    instance_type: ClassVar[str | None] = None
    #: True when a job interrupted by a dead server may be run again from the start.
    resumable: ClassVar[bool] = False
    #: True for long commands that commit batch by batch: the worker calls :meth:`run_batches`
    #: outside any transaction (``self.ctx.session`` is None then), then :meth:`execute` in the
    #: job's final transaction to produce the result.
    commits_in_batches: ClassVar[bool] = False

    @classmethod
    def finishes_in_request(cls, session: Any) -> bool:
        """Whether the job phase may run in the request's own transaction (see ``queue.submit``):
        only for a job that is a few rows and at most one provider call. False by default."""
        return False

    def run_batches(self) -> None:
        """The batched part of a ``commits_in_batches`` command; opens its own transactions."""

    def instance(self) -> Any:
        """The row the job works on (for ``jobinstanceid``), if any."""
        return None


class AsyncCreateCommand(AsyncCommand):
    """Creates its row in the request, answers ``id`` + ``jobid``, finishes in the job."""

    #: Set before :meth:`create` when the job phase runs next in the same transaction: ``create``
    #: may then return its object not yet inserted (not even added to the session), and
    #: :meth:`execute` inserts it once, as it leaves it, instead of it being inserted and updated.
    job_follows: bool = False

    def create(self) -> Any:
        """Insert the new object and return it; runs in the request transaction."""
        raise NotImplementedError


class _ListParams(Schema):
    class Meta:
        unknown = EXCLUDE

    keyword = p.string("List by keyword")
    page = p.integer("")
    pagesize = p.integer("")


class ListCommand(Command):
    read_only = True
    Params = _ListParams


class _ListOwnedParams(_ListParams):
    account = p.string("list resources by account. Must be used with the domainId parameter.")
    # Resolved to the Domain row (or 431), which access.list_scope expects.
    domainid = p.uuid("list only resources belonging to the domain specified", entity=Domain, related="listDomains")
    isrecursive = p.boolean("defaults to false, but if true, lists all resources from the parent "
                            "specified by the domainId till leaves.")
    listall = p.boolean("If set to false, list only resources belonging to the command's caller; "
                        "if set to true - list resources that the caller is authorized to see. "
                        "Default value is false")


class ListOwnedCommand(ListCommand):
    Params = _ListOwnedParams


class BaseParams(Schema):
    """Parameters of a plain command: unknown parameters are ignored, as upstream."""

    class Meta:
        unknown = EXCLUDE


class AsyncParams(BaseParams):
    starteventid = p.long("")
    customjobid = p.string("")


# Descriptions upstream leaves empty on list paging parameters.
_ListParams._declared_fields["page"].metadata["description"] = "The page number of the list"
_ListParams._declared_fields["pagesize"].metadata["description"] = "The number of items per page"
AsyncParams._declared_fields["starteventid"].metadata["description"] = "The ID of the start event of this action"
AsyncParams._declared_fields["customjobid"].metadata["description"] = (
    "an optional field, in case you want to set a custom id to the resource. Allowed to Root Admins only")


# ------------------------------------------------------------------ registry
class Registry:
    """All commands by API name, loaded from the ``apicommands`` package."""

    def __init__(self) -> None:
        self.commands: dict[str, type[Command]] = {}

    def add(self, cmd: type[Command]) -> None:
        if cmd.api_name in self.commands:
            raise ValueError(f"API {cmd.api_name} declared twice")
        self.commands[cmd.api_name] = cmd

    def get(self, name: str) -> type[Command] | None:
        return self.commands.get(name)

    def __iter__(self):
        return iter(sorted(self.commands.values(), key=lambda c: c.api_name))

    def __len__(self) -> int:
        return len(self.commands)

    @classmethod
    def discover(cls, package: str = "apicommands", extra: Iterable[str] | None = None) -> "Registry":
        """Import every module under ``package`` in sorted order; each declares one command.

        ``extra`` names more packages to load the same way (by default the comma-separated
        ``KMS_EXTRA_COMMAND_PACKAGES`` environment variable, used by the tests for test-only
        commands). A name declared twice is an error.
        """
        if extra is None:
            extra = extra_command_packages()
        registry = cls()
        for pkg in [package, *extra]:
            registry._load_package(pkg)
        return registry

    def _load_package(self, package: str) -> None:
        root = importlib.import_module(package)
        names = [package]
        if hasattr(root, "__path__"):
            names += sorted(m.name for m in pkgutil.walk_packages(root.__path__, prefix=package + "."))
        for module_name in names:
            module = importlib.import_module(module_name)
            for obj in vars(module).values():
                if (inspect.isclass(obj) and issubclass(obj, Command) and obj.__module__ == module_name
                        and obj.api_name):
                    self.add(obj)


def extra_command_packages() -> list[str]:
    """Packages named in ``KMS_EXTRA_COMMAND_PACKAGES`` (comma-separated)."""
    raw = os.environ.get("KMS_EXTRA_COMMAND_PACKAGES", "")
    return [name.strip() for name in raw.split(",") if name.strip()]
