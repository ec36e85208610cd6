"""``createVolume`` (async create): KMS, legacy-passphrase or plain volume, chosen by offering and key."""
from cloudstack_kms.api import declare as p
from cloudstack_kms.api.access import resolve_owner
from cloudstack_kms.api.command import ALL_ROLES, AsyncCreateCommand, AsyncParams, ObjectResult
from cloudstack_kms.errors import InvalidParameterValue
from cloudstack_kms.models import DataCenter, Domain
from cloudstack_kms.models.kms import ACTIVE, KekVersion, KmsKey
from cloudstack_kms.models.volume import DiskOffering
from cloudstack_kms.services import settings, volumes
from cloudstack_kms.services.kms import envelope
from cloudstack_kms.services.kms.runtime import runtime_of
from sqlalchemy import and_, bindparam, select

from ..offering.restrictions import check_usable as check_offering_usable
from .responses import VolumeResponse


#: The live key by uuid and its Active version, both locked shared, key first (as deleteKMSKey and
#: rotation lock them), in one statement built once: this runs on every KMS volume created.
_KEY_SHARED = (select(KmsKey, KekVersion)
               .outerjoin(KekVersion, and_(KekVersion.kms_key_id == KmsKey.id, KekVersion.status == ACTIVE,
                                           KekVersion.removed.is_(None)))
               .where(KmsKey.uuid == bindparam("uuid"), KmsKey.removed.is_(None))
               .with_for_update(read=True))


class CreateVolume(AsyncCreateCommand):
    api_name = "createVolume"
    description = "Creates a disk volume from a disk offering. This disk volume must still be attached to a " \
                  "virtual machine to make use of it."
    roles = ALL_ROLES
    response = VolumeResponse
    related = "listVolumes"
    event_type = "VOLUME.CREATE"
    instance_type = "Volume"
    java_class = "org.apache.cloudstack.api.command.user.volume.CreateVolumeCmd"

    class Params(AsyncParams):
        name = p.string("the name of the disk volume")
        zoneid = p.uuid("the ID of the availability zone", entity=DataCenter, related="listZones")
        diskofferingid = p.uuid("the ID of the disk offering. Either diskOfferingId or snapshotId must be passed in.",
                                entity=DiskOffering, related="listDiskOfferings")
        size = p.long("Arbitrary volume size in GB")
        account = p.string("the account associated with the disk volume. Must be used with the domainId parameter.")
        domainid = p.uuid("the domain ID associated with the disk offering. If used with the account parameter "
                          "returns the disk volume associated with the account for the specified domain.",
                          entity=Domain, related="listDomains")
        kmskeyid = p.uuid("the ID of the KMS key whose KEK wraps the volume's data encryption key; requires a disk "
                          "offering with encryption", since="4.23.0", related="listKMSKeys")
        displayvolume = p.boolean("an optional field, whether to display the volume to the end user or not.")

    def create(self):  # noqa: ANN201
        ctx = self.ctx
        if self.arg("diskofferingid") is None:
            raise InvalidParameterValue("Either disk Offering Id or snapshot Id must be passed whilst creating volume")
        if self.arg("zoneid") is None:
            raise InvalidParameterValue("Please specify a valid zone.")
        owner = resolve_owner(ctx, self.args)
        check_offering_usable(ctx.session, self.args["diskofferingid"], owner, self.args["zoneid"])
        key = None
        if self.arg("kmskeyid"):
            # Read and locked (shared) at once: see volumes.allocate.
            found = ctx.session.execute(_KEY_SHARED, {"uuid": self.args["kmskeyid"]}).first()
            if found is None:
                raise InvalidParameterValue(f"KMS key not found: {self.args['kmskeyid']}")
            key, version = found
            if version is not None:
                envelope.note_active_version_locked(ctx.session, key, version)
        volume = volumes.allocate(ctx.session, owner=owner, zone=self.args["zoneid"],
                                  offering=self.args["diskofferingid"], size_gb=self.arg("size"),
                                  name=self.arg("name"), key=key, key_locked=True, insert=not self.job_follows)
        if self.arg("displayvolume") is not None and ctx.is_admin:
            volume.display_volume = self.args["displayvolume"]
        self.event_account = owner
        return volume

    # ---------------------------------------------------------------- the job phase
    @classmethod
    def job_args(cls, params: dict) -> dict:
        """The job needs the created row (``self.created``) and ``name`` (its event) only: the
        request validated and resolved the rest, so it is not parsed and looked up again."""
        return {"name": params.get("name") or None}

    @classmethod
    def shares_transaction(cls, session) -> bool:  # noqa: ANN001
        """Several jobs may run in one transaction when no image is made: each is then a few rows
        and one provider call. (Making an image takes seconds: those jobs run one per thread.)"""
        return not settings.get_value(session, "storage.volume.images")

    @classmethod
    def finishes_in_request(cls, session) -> bool:  # noqa: ANN001
        """The same jobs are short enough to finish in their request (``queue.submit``)."""
        return cls.shares_transaction(session)

    @classmethod
    def prepare_jobs(cls, session, jobs) -> None:  # noqa: ANN001
        """Load and lock the volumes of the jobs about to run in this transaction, in one query."""
        volumes.lock_for_provision(session, [job.instance_id for job in jobs if job.instance_id is not None])

    def execute(self) -> ObjectResult:
        volume = self.created
        volumes.provision(self.ctx.session, runtime_of(self.ctx.state), self.ctx.state.master_key, volume)
        return ObjectResult(VolumeResponse, volumes.volume_view(self.ctx.session, volume, self.ctx.is_admin,
                                                                self.ctx.account))

    def event_description(self) -> str:
        return f"Creating volume: {self.arg('name') or ''}".rstrip()
