"""``migrateVolumesToKMS`` (async, root admin): legacy passphrase volumes move under a KMS key.

By ``volumeids`` (upstream's code: all must belong to the key's owner, else nothing happens)
or by scope — ``zoneid``, ``account`` + ``domainid``, or ``domainid`` (the published admin
guide's form: other accounts' volumes are skipped and reported). Batched, resumable and
idempotent; ``jobprocstatus`` counts migrated volumes; the result reports migrated, skipped
and failed volumes with a reason per failure.
"""
from contextlib import nullcontext

from sqlalchemy import select

from cloudstack_kms.api import declare as p
from cloudstack_kms.api.access import find_account
from cloudstack_kms.api.command import AsyncCommand, AsyncParams, ObjectResult
from cloudstack_kms.api.declare import Out, ResponseObject
from cloudstack_kms.errors import InvalidParameterValue, invalid_uuid
from cloudstack_kms.models import Account, DataCenter, Domain
from cloudstack_kms.models.volume import Volume
from cloudstack_kms.services.kms import migration
from cloudstack_kms.services.kms.runtime import runtime_of

from .lookups import find_key


class MigrationResponse(ResponseObject):
    object_name = "volumemigration"
    migrated = Out.integer("the number of volumes migrated to the KMS key by this run")
    skipped = Out.integer("the number of volumes skipped (other accounts, or already migrated)")
    failed = Out.integer("the number of volumes that could not be migrated")
    alreadymigrated = Out.integer("the number of listed volumes that were already under a KMS key")
    skippedvolumes = Out.list("the volumes skipped, each with volumeid and reason")
    failures = Out.list("the volumes that failed, each with volumeid and reason")


class MigrateVolumesToKMS(AsyncCommand):
    api_name = "migrateVolumesToKMS"
    description = "Migrates volumes encrypted with legacy passphrases to a KMS key, without touching their data"
    since = "4.23.0"
    response = MigrationResponse
    event_type = "VOLUME.MIGRATE.TO.KMS"
    instance_type = "KmsKey"
    resumable = True
    commits_in_batches = True
    java_class = "org.apache.cloudstack.api.command.admin.kms.MigrateVolumesToKMSCmd"

    class Params(AsyncParams):
        kmskeyid = p.uuid("the KMS key that will wrap the volumes' passphrases", required=True,
                          related="listKMSKeys")
        volumeids = p.uuid_list("the volumes to migrate (they must belong to the key's owner account)",
                                related="listVolumes")
        zoneid = p.uuid("migrate the legacy volumes of this zone", entity=DataCenter, related="listZones")
        account = p.string("migrate the legacy volumes of this account (with domainid)")
        domainid = p.uuid("migrate the legacy volumes of this domain and its subdomains, or of the account named "
                          "with account", entity=Domain, related="listDomains")

    report: migration.MigrationReport | None = None

    # -------------------------------------------------------------- request phase
    def instance(self):  # noqa: ANN201 - validates everything before the job is queued
        key = find_key(self.ctx, self.args["kmskeyid"])
        migration.check_key_usable(self.ctx.session, key)
        if self.arg("account") and self.arg("domainid") is None:
            raise InvalidParameterValue("domainId must be specified when accountName is provided")
        if not self.arg("volumeids") and not (self.arg("zoneid") or self.arg("domainid")):
            raise InvalidParameterValue("volumeIds must be specified")
        if self.arg("volumeids"):
            migration.check_volume_ids(self.ctx.session, key, self._listed_volumes())
        self.event_account = self.ctx.session.get(Account, key.account_id)
        return key

    def _listed_volumes(self) -> list[Volume]:
        found = []
        for uuid in self.args["volumeids"]:
            volume = self.ctx.session.scalars(select(Volume).where(Volume.uuid == uuid,
                                                                   Volume.removed.is_(None))).first()
            if volume is None:
                raise invalid_uuid(self.api_name, "volumeids", uuid)
            found.append(volume)
        return found

    # -------------------------------------------------------------- job phase
    def run_batches(self) -> None:
        """Migrate batch by batch, each batch committed on its own (a crash loses one batch at most;
        the job is resumable and a rerun skips what is done).

        Called by the job worker outside any transaction (``commits_in_batches``), or from
        :meth:`execute` inside the job's transaction when a worker did not call it first. On SQLite
        the job's transaction then holds the database's only write lock, so the batches run in it.
        """
        state = self.ctx.state
        outer = self.ctx.session
        report = self.report = migration.MigrationReport()
        joined = outer is not None and state.db.is_sqlite
        with (nullcontext(outer) if outer is not None else state.db.transaction()) as s:
            self.ctx.session = s
            key = self.instance()
            key_id = key.id
            if self.arg("volumeids"):
                ids = [v.id for v in self._listed_volumes()]
            else:
                domain = self.arg("domainid")
                account = find_account(self.ctx, self.args["account"], domain) if self.arg("account") else None
                zone = self.arg("zoneid")
                ids = migration.candidates_by_scope(s, key, zone_id=zone.id if zone else None, domain=domain,
                                                    account=account, report=report)
        self.ctx.session = outer
        runtime = runtime_of(state)
        for start in range(0, len(ids), migration.BATCH):
            migration.migrate_batch(state.db, runtime, state.master_key, key_id, ids[start:start + migration.BATCH],
                                    report, self.ctx.user.id, session=outer if joined else None)
            self.ctx.report_progress(report.migrated)

    def execute(self) -> ObjectResult:
        if self.report is None:  # the worker did not run the batches first
            self.run_batches()
        return ObjectResult(MigrationResponse, self.report.as_result())

    def event_description(self) -> str:
        if self.report is None:
            return f"Migrating volumes to KMS key: {self.args['kmskeyid']}"
        r = self.report
        return (f"Migrated {r.migrated} volumes to KMS key: {self.args['kmskeyid']}. Success: {r.migrated}, "
                f"Failures: {len(r.failures)}")
