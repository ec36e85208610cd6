"""``listEvents``."""
from sqlalchemy import select

from cloudstack_kms.api import declare as p
from cloudstack_kms.api.access import list_scope
from cloudstack_kms.api.command import ALL_ROLES, ListOwnedCommand, ListResult, _ListOwnedParams
from cloudstack_kms.api.declare import Out, ResponseObject
from cloudstack_kms.errors import InvalidParameterValue
from cloudstack_kms.api.listing import keyword_filter, paged
from cloudstack_kms.jobs.queue import INSTANCE_MODELS
from cloudstack_kms.models import Account, Domain, Event, User


class EventResponse(ResponseObject):
    object_name = "event"
    id = Out.uuid("the ID of the event")
    username = Out.string("the name of the user who performed the action (can be different from the account "
                          "if an admin is performing an action for a user, e.g. starting/stopping a user's "
                          "virtual machine)")
    type = Out.string("the type of the event (see event types)")
    level = Out.string("the event level (INFO, WARN, ERROR)")
    description = Out.string("a brief description of the event")
    account = Out.string("the account name for the account that owns the object being acted on in the event")
    domainid = Out.uuid("the id of the account's domain")
    domain = Out.string("the name of the account's domain")
    domainpath = Out.string("path of the Domain the account's domain belongs to")
    resourceid = Out.uuid("the id of the resource")
    resourcetype = Out.string("the type of the resource")
    created = Out.date("the date the event was created")
    state = Out.string("the state of the event")
    parentid = Out.uuid("whether the event is parented")
    archived = Out.boolean("whether the event has been archived or not")


class ListEvents(ListOwnedCommand):
    api_name = "listEvents"
    description = "A command to list events."
    roles = ALL_ROLES
    response = EventResponse
    java_class = "org.apache.cloudstack.api.command.user.event.ListEventsCmd"

    class Params(_ListOwnedParams):
        id = p.uuid("the ID of the event", related="listEvents")
        type = p.string("the event type (see event types)")
        level = p.string("the event level (INFO, WARN, ERROR)")
        startdate = p.date("the start date range of the list you want to retrieve (use format \"yyyy-MM-dd\" "
                           "or the new format \"yyyy-MM-dd HH:mm:ss\")")
        enddate = p.date("the end date range of the list you want to retrieve (use format \"yyyy-MM-dd\" or "
                         "the new format \"yyyy-MM-dd HH:mm:ss\")")
        startid = p.uuid("the parent/start ID of the event, when provided this will list all the events with "
                         "the start/parent ID including the parent event")
        resourceid = p.string("the ID of the resource associated with the event", since="4.17.0")
        resourcetype = p.string("the type of the resource associated with the event", since="4.17.0")
        archived = p.boolean("true to list archived events otherwise false", since="4.19.0")
        entrytime = p.integer("the time the event was entered")
        duration = p.integer("the duration of the event")

    def execute(self) -> ListResult:
        session = self.ctx.session
        stmt = select(Event)
        stmt = list_scope(self.ctx, stmt, Event.account_id, Event.domain_id, self.args)
        stmt = stmt.where(Event.archived.is_(bool(self.arg("archived", False))))
        if not self.ctx.is_admin:
            stmt = stmt.where(Event.display.is_(True))
        if self.arg("id"):
            stmt = stmt.where(Event.uuid == self.args["id"])
        if self.arg("type"):
            stmt = stmt.where(Event.type == self.args["type"])
        if self.arg("level"):
            stmt = stmt.where(Event.level == self.args["level"].upper())
        if self.arg("startdate"):
            stmt = stmt.where(Event.created >= self.args["startdate"])
        if self.arg("enddate"):
            stmt = stmt.where(Event.created <= self.args["enddate"])
        if (self.arg("resourceid") is None) != (self.arg("resourcetype") is None):
            raise InvalidParameterValue("Both resourceid and resourcetype need to be specified")
        if self.arg("resourcetype"):
            stmt = stmt.where(Event.resource_type == self.args["resourcetype"])
            model = INSTANCE_MODELS.get(self.args["resourcetype"])
            row = self.ctx.session.scalars(select(model).where(model.uuid == self.args["resourceid"])).first() \
                if model is not None else None
            stmt = stmt.where(Event.resource_id == (row.id if row is not None else -1))
        stmt = keyword_filter(stmt, self.args, Event.type, Event.description)
        rows, total = paged(session, stmt, self.args, Event.id.desc())
        return ListResult(EventResponse, [self.view(e) for e in rows], total)

    def _resource_uuid(self, event: Event) -> str | None:
        model = INSTANCE_MODELS.get(event.resource_type or "")
        if model is None or event.resource_id is None:
            return None
        row = self.ctx.session.get(model, event.resource_id)
        return getattr(row, "uuid", None)

    def view(self, event: Event) -> dict:
        session = self.ctx.session
        user = session.get(User, event.user_id)
        account = session.get(Account, event.account_id)
        domain = session.get(Domain, event.domain_id)
        parent = session.get(Event, event.start_id) if event.start_id else None
        return {"id": event.uuid, "username": user.username if user else None, "type": event.type,
                "level": event.level, "description": event.description,
                "account": account.account_name if account else None, "domainid": domain.uuid if domain else None,
                "domain": domain.name if domain else None, "domainpath": domain.display_path if domain else None,
                "resourcetype": event.resource_type, "resourceid": self._resource_uuid(event),
                "created": event.created, "state": event.state,
                "parentid": parent.uuid if parent else None, "archived": bool(event.archived)}
