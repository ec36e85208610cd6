-- Schema of the cloudstack-kms server for MySQL / MariaDB, laid out like CloudStack 4.23
-- (the 4.22.1.0 to 4.23.0.0 step). Applied by Database.create_schema() and recorded in
-- the version table. The SQLAlchemy models in cloudstack_kms/models mirror this file and
-- tests/test_schema.py proves that they agree: change both together.
--
-- Conventions
--   * ids are bigint unsigned AUTO_INCREMENT, public ids a uuid varchar(40)
--   * booleans are tinyint(1), datetimes naive UTC
--   * keys are named CloudStack style: uc_<table>__<column> for unique keys,
--     i_<table>__<column>[__<column>] for indexes, fk_<table>__<column> for foreign keys
--   * every key is declared inside its CREATE TABLE, so that the script can run again
--   * statements are split on the semicolon: none inside strings or comments
--

-- Roles that decide which APIs a caller may use (default rows: 1 Admin, 2 ResourceAdmin,
-- 3 DomainAdmin, 4 User).
CREATE TABLE IF NOT EXISTS `roles` (
  `id` bigint unsigned NOT NULL AUTO_INCREMENT,
  `uuid` varchar(40) DEFAULT NULL,
  `name` varchar(255) NOT NULL,
  `role_type` varchar(255) NOT NULL,
  `description` text DEFAULT NULL,
  `removed` datetime DEFAULT NULL,
  `is_default` tinyint(1) NOT NULL DEFAULT 0,
  PRIMARY KEY (`id`),
  CONSTRAINT `uc_roles__uuid` UNIQUE (`uuid`),
  INDEX `i_roles__removed` (`removed`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Domains form a tree. path is / for ROOT, then /child/, /child/grandchild/.
-- The (parent, name, removed) key keeps upstream's implicit name, parent.
CREATE TABLE IF NOT EXISTS `domain` (
  `id` bigint unsigned NOT NULL AUTO_INCREMENT,
  `parent` bigint unsigned DEFAULT NULL,
  `name` varchar(255) DEFAULT NULL,
  `uuid` varchar(40) DEFAULT NULL,
  `owner` bigint unsigned NOT NULL,
  `path` varchar(255) NOT NULL,
  `level` int(10) NOT NULL DEFAULT 0,
  `child_count` int(10) NOT NULL DEFAULT 0,
  `next_child_seq` bigint unsigned NOT NULL DEFAULT 1,
  `created` datetime DEFAULT NULL,
  `removed` datetime DEFAULT NULL,
  `state` varchar(32) NOT NULL DEFAULT 'Active',
  `network_domain` varchar(255) DEFAULT NULL,
  `type` varchar(255) NOT NULL DEFAULT 'Normal',
  PRIMARY KEY (`id`),
  CONSTRAINT `uc_domain__uuid` UNIQUE (`uuid`),
  CONSTRAINT `parent` UNIQUE (`parent`, `name`, `removed`),
  INDEX `i_domain__path` (`path`),
  INDEX `i_domain__removed` (`removed`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Accounts own resources. type holds the ordinal of Account.Type (0 user, 1 root admin,
-- 2 domain admin, 3 resource admin).
CREATE TABLE IF NOT EXISTS `account` (
  `id` bigint unsigned NOT NULL AUTO_INCREMENT,
  `account_name` varchar(100) DEFAULT NULL,
  `uuid` varchar(40) DEFAULT NULL,
  `type` int(1) unsigned NOT NULL,
  `role_id` bigint unsigned DEFAULT NULL,
  `domain_id` bigint unsigned DEFAULT NULL,
  `state` varchar(10) NOT NULL DEFAULT 'enabled',
  `created` datetime DEFAULT NULL,
  `removed` datetime DEFAULT NULL,
  `cleanup_needed` tinyint(1) NOT NULL DEFAULT 0,
  `network_domain` varchar(255) DEFAULT NULL,
  `default` int(1) unsigned NOT NULL DEFAULT 0,
  PRIMARY KEY (`id`),
  CONSTRAINT `uc_account__uuid` UNIQUE (`uuid`),
  INDEX `i_account__account_name__domain_id__removed` (`account_name`, `domain_id`, `removed`),
  INDEX `i_account__role_id` (`role_id`),
  INDEX `i_account__domain_id` (`domain_id`),
  INDEX `i_account__removed` (`removed`),
  INDEX `i_account__cleanup_needed` (`cleanup_needed`),
  CONSTRAINT `fk_account__role_id` FOREIGN KEY (`role_id`) REFERENCES `roles` (`id`),
  CONSTRAINT `fk_account__domain_id` FOREIGN KEY (`domain_id`) REFERENCES `domain` (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Users log in and sign requests. secret_key is sealed with the master key.
CREATE TABLE IF NOT EXISTS `user` (
  `id` bigint unsigned NOT NULL AUTO_INCREMENT,
  `uuid` varchar(40) DEFAULT NULL,
  `username` varchar(255) NOT NULL,
  `password` varchar(255) NOT NULL,
  `account_id` bigint unsigned NOT NULL,
  `firstname` varchar(255) DEFAULT NULL,
  `lastname` varchar(255) DEFAULT NULL,
  `email` varchar(255) DEFAULT NULL,
  `state` varchar(10) NOT NULL DEFAULT 'enabled',
  `api_key` varchar(255) DEFAULT NULL,
  `secret_key` varchar(255) DEFAULT NULL,
  `created` datetime NOT NULL,
  `removed` datetime DEFAULT NULL,
  `timezone` varchar(30) DEFAULT NULL,
  `incorrect_login_attempts` int(10) unsigned NOT NULL DEFAULT 0,
  `default` int(1) unsigned NOT NULL DEFAULT 0,
  `source` varchar(40) NOT NULL DEFAULT 'UNKNOWN',
  PRIMARY KEY (`id`),
  CONSTRAINT `uc_user__uuid` UNIQUE (`uuid`),
  CONSTRAINT `uc_user__api_key` UNIQUE (`api_key`),
  INDEX `i_user__account_id` (`account_id`),
  INDEX `i_user__removed` (`removed`),
  CONSTRAINT `fk_user__account_id` FOREIGN KEY (`account_id`) REFERENCES `account` (`id`) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Zones. domain_id NULL means a public zone, else the domain the zone is dedicated to.
CREATE TABLE IF NOT EXISTS `data_center` (
  `id` bigint unsigned NOT NULL AUTO_INCREMENT,
  `uuid` varchar(40) DEFAULT NULL,
  `name` varchar(255) DEFAULT NULL,
  `description` varchar(255) DEFAULT NULL,
  `dns1` varchar(255) NOT NULL,
  `dns2` varchar(255) DEFAULT NULL,
  `ip6_dns1` varchar(255) DEFAULT NULL,
  `ip6_dns2` varchar(255) DEFAULT NULL,
  `internal_dns1` varchar(255) NOT NULL,
  `internal_dns2` varchar(255) DEFAULT NULL,
  `guest_network_cidr` varchar(18) DEFAULT NULL,
  `domain` varchar(100) DEFAULT NULL,
  `domain_id` bigint unsigned DEFAULT NULL,
  `networktype` varchar(255) NOT NULL DEFAULT 'Basic',
  `dhcp_provider` varchar(64) DEFAULT 'VirtualRouter',
  `allocation_state` varchar(32) NOT NULL DEFAULT 'Enabled',
  `zone_token` varchar(255) DEFAULT NULL,
  `is_security_group_enabled` tinyint(1) NOT NULL DEFAULT 0,
  `is_local_storage_enabled` tinyint(1) NOT NULL DEFAULT 0,
  `sort_key` int(32) NOT NULL DEFAULT 0,
  `type` varchar(32) DEFAULT 'Core',
  `removed` datetime DEFAULT NULL,
  PRIMARY KEY (`id`),
  CONSTRAINT `uc_data_center__uuid` UNIQUE (`uuid`),
  INDEX `i_data_center__domain_id` (`domain_id`),
  INDEX `i_data_center__removed` (`removed`),
  CONSTRAINT `fk_data_center__domain_id` FOREIGN KEY (`domain_id`) REFERENCES `domain` (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Audit trail read by listEvents. start_id points at the first event of the same action.
CREATE TABLE IF NOT EXISTS `event` (
  `id` bigint unsigned NOT NULL AUTO_INCREMENT,
  `uuid` varchar(40) DEFAULT NULL,
  `type` varchar(50) NOT NULL,
  `state` varchar(32) NOT NULL DEFAULT 'Completed',
  `description` varchar(1024) NOT NULL,
  `user_id` bigint unsigned NOT NULL,
  `account_id` bigint unsigned NOT NULL,
  `domain_id` bigint unsigned NOT NULL,
  `resource_id` bigint unsigned DEFAULT NULL,
  `resource_type` varchar(32) DEFAULT NULL,
  `created` datetime NOT NULL,
  `level` varchar(16) NOT NULL DEFAULT 'INFO',
  `start_id` bigint unsigned NOT NULL DEFAULT 0,
  `parameters` varchar(1024) DEFAULT NULL,
  `archived` tinyint(1) NOT NULL DEFAULT 0,
  `display` tinyint(1) NOT NULL DEFAULT 1,
  PRIMARY KEY (`id`),
  CONSTRAINT `uc_event__uuid` UNIQUE (`uuid`),
  INDEX `i_event__account_id__archived__created` (`account_id`, `archived`, `created`),
  INDEX `i_event__archived__level__created` (`archived`, `level`, `created`),
  INDEX `i_event__domain_id` (`domain_id`),
  INDEX `i_event__resource_id__resource_type` (`resource_id`, `resource_type`),
  INDEX `i_event__start_id` (`start_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Global settings. scope is a bit mask of the allowed scopes (1 Global, 2 Zone, 4 Cluster,
-- 8 StoragePool, 16 ManagementServer, 32 ImageStore, 64 Domain, 128 Account).
-- value and default_value are utf8mb3, as upstream: two utf8mb4 varchar(8191) columns
-- alone pass the 65535 byte row size limit of MySQL.
CREATE TABLE IF NOT EXISTS `configuration` (
  `name` varchar(255) NOT NULL,
  `category` varchar(255) NOT NULL DEFAULT 'Advanced',
  `instance` varchar(255) NOT NULL DEFAULT 'DEFAULT',
  `component` varchar(255) NOT NULL DEFAULT 'management-server',
  `value` varchar(8191) CHARACTER SET utf8mb3 DEFAULT NULL,
  `description` varchar(1024) DEFAULT NULL,
  `default_value` varchar(8191) CHARACTER SET utf8mb3 DEFAULT NULL,
  `updated` datetime DEFAULT NULL,
  `scope` bigint NOT NULL DEFAULT 1,
  `is_dynamic` tinyint(1) NOT NULL DEFAULT 0,
  `display_text` varchar(255) DEFAULT NULL,
  `kind` varchar(255) DEFAULT NULL,
  `options` varchar(255) DEFAULT NULL,
  PRIMARY KEY (`name`),
  INDEX `i_configuration__category` (`category`),
  INDEX `i_configuration__instance` (`instance`),
  INDEX `i_configuration__component` (`component`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Async jobs. removed is the completion time, NULL while the job runs. related is empty
-- for a top-level API job. job_cmd_info and job_result hold JSON.
-- Upstream calls the uuid key uc_async__uuid, here it follows the uc_<table>__<column> rule.
CREATE TABLE IF NOT EXISTS `async_job` (
  `id` bigint unsigned NOT NULL AUTO_INCREMENT,
  `user_id` bigint unsigned NOT NULL,
  `account_id` bigint unsigned NOT NULL,
  `instance_type` varchar(64) DEFAULT NULL,
  `instance_id` bigint unsigned DEFAULT NULL,
  `job_cmd` varchar(255) DEFAULT NULL,
  `job_cmd_info` text DEFAULT NULL,
  `job_cmd_ver` int(1) DEFAULT 0,
  `job_status` int(1) DEFAULT 0,
  `job_process_status` int(1) DEFAULT 0,
  `job_result_code` int(1) DEFAULT 0,
  `job_result` text DEFAULT NULL,
  `job_init_msid` bigint DEFAULT NULL,
  `job_executing_msid` bigint DEFAULT NULL,
  `job_complete_msid` bigint DEFAULT NULL,
  `created` datetime DEFAULT NULL,
  `last_updated` datetime DEFAULT NULL,
  `last_polled` datetime DEFAULT NULL,
  `removed` datetime DEFAULT NULL,
  `uuid` varchar(40) DEFAULT NULL,
  `related` varchar(40) NOT NULL DEFAULT '',
  `job_type` varchar(32) DEFAULT 'AsyncJob',
  `job_dispatcher` varchar(64) DEFAULT 'ApiAsyncJobDispatcher',
  `job_pending_signals` int(10) NOT NULL DEFAULT 0,
  PRIMARY KEY (`id`),
  CONSTRAINT `uc_async_job__uuid` UNIQUE (`uuid`),
  INDEX `i_async_job__user_id` (`user_id`),
  INDEX `i_async_job__account_id` (`account_id`),
  INDEX `i_async_job__instance_type__instance_id` (`instance_type`, `instance_id`),
  INDEX `i_async_job__job_cmd` (`job_cmd`),
  INDEX `i_async_job__created` (`created`),
  INDEX `i_async_job__last_updated` (`last_updated`),
  INDEX `i_async_job__last_polled` (`last_polled`),
  INDEX `i_async_job__removed` (`removed`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Management server processes. The heartbeat (last_update) tells the others it is alive.
CREATE TABLE IF NOT EXISTS `mshost` (
  `id` bigint unsigned NOT NULL AUTO_INCREMENT,
  `msid` bigint NOT NULL,
  `name` varchar(255) DEFAULT NULL,
  `service_ip` varchar(40) DEFAULT NULL,
  `pid` int(10) DEFAULT NULL,
  `state` varchar(10) NOT NULL DEFAULT 'Up',
  `last_update` datetime NOT NULL,
  `removed` datetime DEFAULT NULL,
  PRIMARY KEY (`id`),
  CONSTRAINT `uc_mshost__msid` UNIQUE (`msid`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Login sessions. Only the SHA-256 digest of the session key is stored.
CREATE TABLE IF NOT EXISTS `api_session` (
  `id` bigint unsigned NOT NULL AUTO_INCREMENT,
  `session_key_hash` varchar(64) NOT NULL,
  `jsessionid` varchar(64) NOT NULL,
  `user_id` bigint unsigned NOT NULL,
  `created` datetime NOT NULL,
  `last_access` datetime NOT NULL,
  `removed` datetime DEFAULT NULL,
  PRIMARY KEY (`id`),
  CONSTRAINT `uc_api_session__session_key_hash` UNIQUE (`session_key_hash`),
  INDEX `i_api_session__jsessionid` (`jsessionid`),
  INDEX `i_api_session__user_id` (`user_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Applied schema steps, one row per script.
CREATE TABLE IF NOT EXISTS `version` (
  `id` bigint unsigned NOT NULL AUTO_INCREMENT,
  `version` varchar(40) NOT NULL,
  `updated` datetime NOT NULL,
  `step` varchar(32) NOT NULL,
  PRIMARY KEY (`id`),
  CONSTRAINT `uc_version__version` UNIQUE (`version`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- ---------------------------------------------------------------------------------------
-- KMS (upstream 4.23, PR #12711): HSM profiles, KMS keys, KEK versions, wrapped keys and
-- the database provider's KEK store. Key names as upstream.
-- ---------------------------------------------------------------------------------------

-- Connection settings of a key backend. account_id NULL with domain_id set: shared with
-- that domain; is_public: usable by every account.
CREATE TABLE IF NOT EXISTS `kms_hsm_profiles` (
  `id` bigint unsigned NOT NULL AUTO_INCREMENT,
  `uuid` varchar(40) NOT NULL,
  `name` varchar(255) NOT NULL,
  `protocol` varchar(32) NOT NULL,
  `account_id` bigint unsigned DEFAULT NULL,
  `domain_id` bigint unsigned DEFAULT NULL,
  `zone_id` bigint unsigned DEFAULT NULL,
  `vendor_name` varchar(64) DEFAULT NULL,
  `enabled` tinyint(1) NOT NULL DEFAULT 1,
  `is_public` tinyint(1) NOT NULL DEFAULT 0,
  `created` datetime NOT NULL,
  `removed` datetime DEFAULT NULL,
  PRIMARY KEY (`id`),
  CONSTRAINT `uk_uuid` UNIQUE (`uuid`),
  CONSTRAINT `uk_account_name` UNIQUE (`account_id`, `name`, `removed`),
  INDEX `idx_protocol_enabled` (`protocol`, `enabled`, `removed`),
  INDEX `idx_scoping` (`account_id`, `domain_id`, `zone_id`, `removed`),
  CONSTRAINT `fk_kms_hsm_profiles__account_id` FOREIGN KEY (`account_id`) REFERENCES `account` (`id`) ON DELETE CASCADE,
  CONSTRAINT `fk_kms_hsm_profiles__domain_id` FOREIGN KEY (`domain_id`) REFERENCES `domain` (`id`) ON DELETE CASCADE,
  CONSTRAINT `fk_kms_hsm_profiles__zone_id` FOREIGN KEY (`zone_id`) REFERENCES `data_center` (`id`) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Profile details; values of sensitive names (pin, password, private_key, *secret*) are
-- sealed with the server's master key.
CREATE TABLE IF NOT EXISTS `kms_hsm_profile_details` (
  `id` bigint unsigned NOT NULL AUTO_INCREMENT,
  `profile_id` bigint unsigned NOT NULL,
  `name` varchar(255) NOT NULL,
  `value` text NOT NULL,
  PRIMARY KEY (`id`),
  CONSTRAINT `uk_profile_name` UNIQUE (`profile_id`, `name`),
  CONSTRAINT `fk_kms_hsm_profile_details__profile_id` FOREIGN KEY (`profile_id`) REFERENCES `kms_hsm_profiles` (`id`) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- The logical KEK users see: owned by an account, valid in one zone, bound to a profile.
CREATE TABLE IF NOT EXISTS `kms_keys` (
  `id` bigint unsigned NOT NULL AUTO_INCREMENT,
  `uuid` varchar(40) NOT NULL,
  `name` varchar(255) NOT NULL,
  `description` varchar(1024) DEFAULT NULL,
  `kek_label` varchar(255) NOT NULL,
  `purpose` varchar(32) NOT NULL,
  `account_id` bigint unsigned NOT NULL,
  `domain_id` bigint unsigned NOT NULL,
  `zone_id` bigint unsigned NOT NULL,
  `algorithm` varchar(64) NOT NULL DEFAULT 'AES/GCM/NoPadding',
  `key_bits` int NOT NULL DEFAULT 256,
  `enabled` tinyint(1) NOT NULL DEFAULT 1,
  `hsm_profile_id` bigint unsigned NOT NULL,
  `created` datetime NOT NULL,
  `removed` datetime DEFAULT NULL,
  PRIMARY KEY (`id`),
  CONSTRAINT `uk_uuid` UNIQUE (`uuid`),
  INDEX `idx_account_purpose` (`account_id`, `purpose`, `enabled`),
  INDEX `idx_domain_purpose` (`domain_id`, `purpose`, `enabled`),
  INDEX `idx_zone_enabled` (`zone_id`, `enabled`),
  CONSTRAINT `fk_kms_keys__account_id` FOREIGN KEY (`account_id`) REFERENCES `account` (`id`) ON DELETE CASCADE,
  CONSTRAINT `fk_kms_keys__domain_id` FOREIGN KEY (`domain_id`) REFERENCES `domain` (`id`) ON DELETE CASCADE,
  CONSTRAINT `fk_kms_keys__zone_id` FOREIGN KEY (`zone_id`) REFERENCES `data_center` (`id`) ON DELETE CASCADE,
  CONSTRAINT `fk_kms_keys__hsm_profile_id` FOREIGN KEY (`hsm_profile_id`) REFERENCES `kms_hsm_profiles` (`id`) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- The physical KEKs of a key: one Active, older ones Previous until rewrapped, then Archived.
CREATE TABLE IF NOT EXISTS `kms_kek_versions` (
  `id` bigint unsigned NOT NULL AUTO_INCREMENT,
  `uuid` varchar(40) NOT NULL,
  `kms_key_id` bigint unsigned NOT NULL,
  `version_number` int NOT NULL,
  `kek_label` varchar(255) NOT NULL,
  `status` varchar(32) NOT NULL DEFAULT 'Active',
  `hsm_profile_id` bigint unsigned DEFAULT NULL,
  `created` datetime NOT NULL,
  `removed` datetime DEFAULT NULL,
  PRIMARY KEY (`id`),
  CONSTRAINT `uk_uuid` UNIQUE (`uuid`),
  CONSTRAINT `uk_kms_key_version` UNIQUE (`kms_key_id`, `version_number`, `removed`),
  INDEX `idx_kms_key_status` (`kms_key_id`, `status`, `removed`),
  INDEX `idx_kek_label` (`kek_label`),
  CONSTRAINT `fk_kms_kek_versions__kms_key_id` FOREIGN KEY (`kms_key_id`) REFERENCES `kms_keys` (`id`) ON DELETE CASCADE,
  CONSTRAINT `fk_kms_kek_versions__hsm_profile_id` FOREIGN KEY (`hsm_profile_id`) REFERENCES `kms_hsm_profiles` (`id`) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- DEKs, stored only wrapped: a versioned, authenticated blob bound to this row's uuid and
-- its KMS key's uuid.
CREATE TABLE IF NOT EXISTS `kms_wrapped_key` (
  `id` bigint unsigned NOT NULL AUTO_INCREMENT,
  `uuid` varchar(40) NOT NULL,
  `kms_key_id` bigint unsigned DEFAULT NULL,
  `kek_version_id` bigint unsigned DEFAULT NULL,
  `zone_id` bigint unsigned NOT NULL,
  `wrapped_blob` varbinary(4096) NOT NULL,
  `created` datetime NOT NULL,
  `removed` datetime DEFAULT NULL,
  PRIMARY KEY (`id`),
  CONSTRAINT `uk_uuid` UNIQUE (`uuid`),
  INDEX `i_kms_wrapped_key__kms_key_id__removed` (`kms_key_id`, `removed`),
  INDEX `i_kms_wrapped_key__kek_version_id__removed` (`kek_version_id`, `removed`),
  INDEX `i_kms_wrapped_key__zone_id__removed` (`zone_id`, `removed`),
  CONSTRAINT `fk_kms_wrapped_key__kms_key_id` FOREIGN KEY (`kms_key_id`) REFERENCES `kms_keys` (`id`) ON DELETE CASCADE,
  CONSTRAINT `fk_kms_wrapped_key__kek_version_id` FOREIGN KEY (`kek_version_id`) REFERENCES `kms_kek_versions` (`id`) ON DELETE CASCADE,
  CONSTRAINT `fk_kms_wrapped_key__zone_id` FOREIGN KEY (`zone_id`) REFERENCES `data_center` (`id`) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- The database provider's KEKs: random bytes sealed with the master key, PKCS#11-like attributes.
CREATE TABLE IF NOT EXISTS `kms_database_kek_objects` (
  `id` bigint unsigned NOT NULL AUTO_INCREMENT,
  `uuid` varchar(40) NOT NULL,
  `object_class` varchar(32) NOT NULL DEFAULT 'CKO_SECRET_KEY',
  `label` varchar(255) NOT NULL,
  `object_id` varbinary(64) DEFAULT NULL,
  `key_type` varchar(32) NOT NULL DEFAULT 'CKK_AES',
  `key_material` varbinary(512) NOT NULL,
  `is_sensitive` tinyint(1) NOT NULL DEFAULT 1,
  `is_extractable` tinyint(1) NOT NULL DEFAULT 0,
  `is_token` tinyint(1) NOT NULL DEFAULT 1,
  `is_private` tinyint(1) NOT NULL DEFAULT 1,
  `is_modifiable` tinyint(1) NOT NULL DEFAULT 0,
  `is_copyable` tinyint(1) NOT NULL DEFAULT 0,
  `is_destroyable` tinyint(1) NOT NULL DEFAULT 1,
  `always_sensitive` tinyint(1) NOT NULL DEFAULT 1,
  `never_extractable` tinyint(1) NOT NULL DEFAULT 1,
  `purpose` varchar(32) NOT NULL,
  `key_bits` int NOT NULL,
  `algorithm` varchar(64) NOT NULL DEFAULT 'AES/GCM/NoPadding',
  `start_date` datetime DEFAULT NULL,
  `end_date` datetime DEFAULT NULL,
  `created` datetime NOT NULL,
  `last_used` datetime DEFAULT NULL,
  `removed` datetime DEFAULT NULL,
  PRIMARY KEY (`id`),
  CONSTRAINT `uk_uuid` UNIQUE (`uuid`),
  CONSTRAINT `uk_label_removed` UNIQUE (`label`, `removed`),
  INDEX `idx_purpose_removed` (`purpose`, `removed`),
  INDEX `idx_key_type_removed` (`key_type`, `removed`),
  INDEX `idx_object_class_removed` (`object_class`, `removed`),
  INDEX `idx_created` (`created`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- ---------------------------------------------------------------------------------------
-- Storage: the part of CloudStack that uses the keys. Legacy passphrases (4.18), disk
-- offerings with the encrypt flag, directory-backed primary storage, and volumes with
-- the 4.23 KMS columns.
-- ---------------------------------------------------------------------------------------

-- Legacy per-volume secret: Base64 of 48 random bytes, sealed with the master key.
CREATE TABLE IF NOT EXISTS `passphrase` (
  `id` bigint unsigned NOT NULL AUTO_INCREMENT,
  `passphrase` varchar(255) DEFAULT NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS `disk_offering` (
  `id` bigint unsigned NOT NULL AUTO_INCREMENT,
  `uuid` varchar(40) DEFAULT NULL,
  `name` varchar(255) NOT NULL,
  `display_text` varchar(4096) DEFAULT NULL,
  `disk_size` bigint unsigned NOT NULL DEFAULT 0,
  `tags` varchar(4096) DEFAULT NULL,
  `customized` tinyint(1) NOT NULL DEFAULT 0,
  `use_local_storage` tinyint(1) NOT NULL DEFAULT 0,
  `provisioning_type` varchar(32) NOT NULL DEFAULT 'thin',
  `state` varchar(40) NOT NULL DEFAULT 'Active',
  `display_offering` tinyint(1) NOT NULL DEFAULT 1,
  `encrypt` tinyint(1) DEFAULT 0,
  `cache_mode` varchar(18) DEFAULT 'none',
  `disk_size_strictness` tinyint(1) NOT NULL DEFAULT 0,
  `created` datetime DEFAULT NULL,
  `removed` datetime DEFAULT NULL,
  PRIMARY KEY (`id`),
  CONSTRAINT `uc_disk_offering__uuid` UNIQUE (`uuid`),
  INDEX `i_disk_offering__removed` (`removed`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Details of a disk offering; the zones and domains it is limited to are details named `zoneid` and
-- `domainid` holding internal ids, one row per id.
CREATE TABLE IF NOT EXISTS `disk_offering_details` (
  `id` bigint unsigned NOT NULL AUTO_INCREMENT,
  `offering_id` bigint unsigned NOT NULL,
  `name` varchar(255) NOT NULL,
  `value` varchar(4096) NOT NULL,
  `display` tinyint(1) NOT NULL DEFAULT 1,
  PRIMARY KEY (`id`),
  INDEX `i_disk_offering_details__offering_id` (`offering_id`),
  CONSTRAINT `fk_disk_offering_details__offering_id` FOREIGN KEY (`offering_id`) REFERENCES `disk_offering` (`id`) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS `storage_pool` (
  `id` bigint unsigned NOT NULL AUTO_INCREMENT,
  `name` varchar(255) DEFAULT NULL,
  `uuid` varchar(255) DEFAULT NULL,
  `pool_type` varchar(32) NOT NULL DEFAULT 'Filesystem',
  `port` bigint NOT NULL DEFAULT 0,
  `data_center_id` bigint unsigned NOT NULL,
  `used_bytes` bigint unsigned DEFAULT NULL,
  `capacity_bytes` bigint unsigned DEFAULT NULL,
  `host_address` varchar(255) NOT NULL DEFAULT 'localhost',
  `path` varchar(255) NOT NULL,
  `status` varchar(32) DEFAULT 'Up',
  `scope` varchar(255) DEFAULT 'ZONE',
  `storage_provider_name` varchar(255) NOT NULL DEFAULT 'DefaultPrimary',
  `created` datetime DEFAULT NULL,
  `removed` datetime DEFAULT NULL,
  PRIMARY KEY (`id`),
  CONSTRAINT `uc_storage_pool__uuid` UNIQUE (`uuid`),
  INDEX `i_storage_pool__data_center_id` (`data_center_id`),
  CONSTRAINT `fk_storage_pool__data_center_id` FOREIGN KEY (`data_center_id`) REFERENCES `data_center` (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS `volumes` (
  `id` bigint unsigned NOT NULL AUTO_INCREMENT,
  `uuid` varchar(40) DEFAULT NULL,
  `name` varchar(255) DEFAULT NULL,
  `account_id` bigint unsigned NOT NULL,
  `domain_id` bigint unsigned NOT NULL,
  `pool_id` bigint unsigned DEFAULT NULL,
  `size` bigint unsigned NOT NULL,
  `path` varchar(255) DEFAULT NULL,
  `data_center_id` bigint unsigned NOT NULL,
  `volume_type` varchar(64) NOT NULL DEFAULT 'DATADISK',
  `disk_offering_id` bigint unsigned NOT NULL,
  `format` varchar(255) DEFAULT NULL,
  `state` varchar(32) DEFAULT NULL,
  `provisioning_type` varchar(32) NOT NULL DEFAULT 'thin',
  `display_volume` tinyint(1) NOT NULL DEFAULT 1,
  `passphrase_id` bigint unsigned DEFAULT NULL,
  `encrypt_format` varchar(64) DEFAULT NULL,
  `kms_key_id` bigint unsigned DEFAULT NULL,
  `kms_wrapped_key_id` bigint unsigned DEFAULT NULL,
  `check_result` varchar(4096) DEFAULT NULL,
  `created` datetime DEFAULT NULL,
  `updated` datetime DEFAULT NULL,
  `removed` datetime DEFAULT NULL,
  PRIMARY KEY (`id`),
  CONSTRAINT `uc_volumes__uuid` UNIQUE (`uuid`),
  INDEX `i_volumes__account_id` (`account_id`),
  INDEX `i_volumes__data_center_id` (`data_center_id`),
  INDEX `i_volumes__pool_id` (`pool_id`),
  INDEX `i_volumes__removed` (`removed`),
  INDEX `i_volumes__state` (`state`),
  INDEX `i_volumes__kms_key_id` (`kms_key_id`),
  INDEX `i_volumes__kms_wrapped_key_id` (`kms_wrapped_key_id`),
  INDEX `i_volumes__passphrase_id` (`passphrase_id`),
  CONSTRAINT `fk_volumes__account_id` FOREIGN KEY (`account_id`) REFERENCES `account` (`id`),
  CONSTRAINT `fk_volumes__pool_id` FOREIGN KEY (`pool_id`) REFERENCES `storage_pool` (`id`),
  CONSTRAINT `fk_passphrase_id` FOREIGN KEY (`passphrase_id`) REFERENCES `passphrase` (`id`),
  CONSTRAINT `fk_volumes__kms_key_id` FOREIGN KEY (`kms_key_id`) REFERENCES `kms_keys` (`id`),
  CONSTRAINT `fk_volumes__kms_wrapped_key_id` FOREIGN KEY (`kms_wrapped_key_id`) REFERENCES `kms_wrapped_key` (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
