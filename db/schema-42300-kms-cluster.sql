-- cloudstack-kms's own step after 4.23's schema: tables for several servers (and Galera nodes)
-- sharing the background work. Applied after schema-42210to42300.sql, recorded in `version`.

-- Not upstream: lets every server rewrap at once. The wrapped keys of a Previous version are
-- cut into id ranges (first_id..last_id); a server claims a range by a conditional UPDATE
-- (free, expired or already its own), renews it while it works and frees it after; a range
-- found empty is deleted. expires_ms: milliseconds since the epoch by the database's clock.
CREATE TABLE IF NOT EXISTS `kms_rewrap_lease` (
  `id` bigint unsigned NOT NULL AUTO_INCREMENT,
  `kek_version_id` bigint unsigned NOT NULL,
  `first_id` bigint unsigned NOT NULL,
  `last_id` bigint unsigned NOT NULL,
  `owner_msid` bigint DEFAULT NULL,
  `expires_ms` bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (`id`),
  CONSTRAINT `uc_kms_rewrap_lease__kek_version_id__first_id` UNIQUE (`kek_version_id`, `first_id`),
  CONSTRAINT `fk_kms_rewrap_lease__kek_version_id` FOREIGN KEY (`kek_version_id`) REFERENCES `kms_kek_versions` (`id`) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Not upstream: named locks for work that must run once cluster-wide (GET_LOCK is local to a
-- Galera node). owner is the token of one acquisition, holder the host and pid (for people);
-- taken by a conditional UPDATE, renewed while held, taken over once expires_ms has passed.
CREATE TABLE IF NOT EXISTS `kms_lock` (
  `id` bigint unsigned NOT NULL AUTO_INCREMENT,
  `name` varchar(255) NOT NULL,
  `owner` bigint DEFAULT NULL,
  `holder` varchar(255) DEFAULT NULL,
  `expires_ms` bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (`id`),
  CONSTRAINT `uc_kms_lock__name` UNIQUE (`name`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
