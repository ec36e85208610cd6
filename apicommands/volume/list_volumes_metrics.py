"""``listVolumesMetrics``: ``listVolumes`` plus the metrics columns; the web UI's Volumes page lists with it.

Same parameters, scope and rows as ``listVolumes`` (upstream's command extends it). Each
volume adds ``sizegb`` (its size in GiB, two decimals) and, for admins, a ``storagetype``
that also names the volume type ("Shared (DATADISK)"). ``diskiopstotal`` is the sum of read
and write I/O counts; this server runs no hypervisor that would count them, so, like
upstream without disk statistics, it is left out.
"""
from cloudstack_kms.api.command import ALL_ROLES, ListResult
from cloudstack_kms.api.declare import Out

from .list_volumes import ListVolumes
from .responses import VolumeResponse

GIB = 1024 ** 3


class VolumeMetricsResponse(VolumeResponse):
    object_name = "volume"
    sizegb = Out.string("Disk size in GiB")
    diskiopstotal = Out.long("The total disk iops")


def with_metrics(view: dict, admin: bool) -> dict:
    """A volume's view with the metrics fields, as upstream's metrics service fills them."""
    metrics = dict(view)
    if view.get("size") is not None:
        metrics["sizegb"] = f"{view['size'] / GIB:.2f} GiB"
    if admin and view.get("storagetype") and view.get("type"):
        kind = view["storagetype"]
        metrics["storagetype"] = f"{kind[:1].upper()}{kind[1:]} ({view['type']})"
    return metrics


class ListVolumesMetrics(ListVolumes):
    api_name = "listVolumesMetrics"
    description = "Lists volume metrics"
    since = "4.9.3"
    roles = ALL_ROLES
    response = VolumeMetricsResponse
    related = None
    java_class = "org.apache.cloudstack.api.ListVolumesMetricsCmd"

    def execute(self) -> ListResult:
        listed = super().execute()
        items = [with_metrics(v, self.ctx.is_admin) for v in listed.items]
        return ListResult(VolumeMetricsResponse, items, listed.count)
