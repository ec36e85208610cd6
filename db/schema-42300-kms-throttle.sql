-- cloudstack-kms's own step: API throttling (api.throttling.*) shared by every server.
-- Upstream keeps the per-account counts in each management server's memory; here they are
-- shared through the database, so that several servers enforce one limit together.

-- One row per account that made calls while throttling was on: the start of its current
-- window (seconds since the epoch, a multiple of api.throttling.interval) and the calls counted
-- in it. Rewritten in place by one atomic INSERT ... ON DUPLICATE KEY UPDATE per call.
-- No foreign key to `account`: the check would lock the account row from a transaction of its
-- own while the request's transaction may hold it (updateAccount), and accounts are only ever
-- soft-deleted.
CREATE TABLE IF NOT EXISTS `api_rate_limit` (
  `account_id` bigint unsigned NOT NULL,
  `window_start` bigint NOT NULL,
  `count` int unsigned NOT NULL,
  PRIMARY KEY (`account_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
