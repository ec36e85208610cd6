"""``listAlerts``: this server raises no alerts (its failures are events and job results), so the list is empty."""
from cloudstack_kms.api.command import ListCommand, ListResult, _ListParams
from cloudstack_kms.api.declare import Out, ResponseObject

from .common import INFRA_ADMINS, nothing


class AlertResponse(ResponseObject):
    object_name = "alert"
    id = Out.uuid("the id of the alert")
    type = Out.integer("One of the following alert types: MEMORY = 0, CPU = 1, STORAGE = 2, STORAGE_ALLOCATED = 3, "
                       "... (see the Administration Guide for the full list)")
    name = Out.string("the name of the alert")
    description = Out.string("description of the alert")
    sent = Out.date("the date and time the alert was sent")


class ListAlerts(ListCommand):
    api_name = "listAlerts"
    description = "Lists all alerts."
    roles = INFRA_ADMINS
    response = AlertResponse
    java_class = "org.apache.cloudstack.api.command.admin.resource.ListAlertsCmd"

    class Params(_ListParams):
        pass

    def execute(self) -> ListResult:
        return nothing(self, AlertResponse)
