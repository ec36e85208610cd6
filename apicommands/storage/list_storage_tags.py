"""``listStorageTags``: the tags of the primary storage pools.

Tags are set on pools when they are added (``createStoragePool tags=``); this server makes one
untagged pool per zone and has no command that tags one, so the list is empty. The paging
parameters are still checked. The web UI's Add Disk Offering form offers these tags.
"""
from cloudstack_kms.api.command import ListCommand, ListResult
from cloudstack_kms.api.declare import Out, ResponseObject
from cloudstack_kms.api.listing import max_page_size, page_window


class StorageTagResponse(ResponseObject):
    object_name = "storagetag"
    id = Out.string("the ID of the storage tag")
    name = Out.string("the name of the storage tag")
    poolid = Out.long("the pool ID of the storage tag")


class ListStorageTags(ListCommand):
    api_name = "listStorageTags"
    description = "Lists storage tags"
    response = StorageTagResponse
    java_class = "org.apache.cloudstack.api.command.admin.storage.ListStorageTagsCmd"

    def execute(self) -> ListResult:
        page_window(self.args, max_page_size(self.ctx.session))
        return ListResult(StorageTagResponse, [], 0)
