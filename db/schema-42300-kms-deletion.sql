-- cloudstack-kms's own step after 4.23's schema (not upstream): the deletion safety net of KMS
-- keys. deleteKMSKey schedules the deletion after kms.key.deletion.pending.days; the key's KEKs
-- are destroyed, and the row removed, only once deletion_date (UTC) has passed, and
-- cancelKMSKeyDeletion restores the key until then (services/kms/deletion.py).
-- Applied after schema-42300-kms-cluster.sql, recorded in `version`. Plain DDL, which MySQL 8
-- and MariaDB both accept (MySQL has no ADD COLUMN).

-- deletion_date: set while the deletion is pending. enabled_before_deletion: the `enabled` flag the
-- key had when the deletion was scheduled (the key is disabled meanwhile); restored on cancel.
ALTER TABLE `kms_keys` ADD COLUMN `deletion_date` datetime DEFAULT NULL;
ALTER TABLE `kms_keys` ADD COLUMN `enabled_before_deletion` tinyint(1) DEFAULT NULL;

-- The background purge looks up the keys that are due.
CREATE INDEX `idx_deletion_date` ON `kms_keys` (`deletion_date`, `removed`);
