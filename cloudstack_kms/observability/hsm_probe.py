"""A background health check of every HSM profile, per server process.

Each process checks each profile every ``KMS_HSM_PROBE_INTERVAL_SEC`` seconds (default 60) with
the provider's ``health_check`` (PKCS#11: a login and a random-number call on the token), one
attempt bounded by :data:`PROBE_TIMEOUT_SEC`, and keeps the last answer in memory. Readers
(``listHSMProfiles`` for root admins, the ``kms_hsm_profile_reachable`` gauge) only look at that
answer: listing profiles never waits for a token.
"""
from __future__ import annotations

import logging
import os
import threading
from typing import Any

from sqlalchemy import select

from ..providers import retry

log = logging.getLogger(__name__)

INTERVAL_ENV = "KMS_HSM_PROBE_INTERVAL_SEC"
DEFAULT_INTERVAL_SEC = 60.0
#: Longest one health check may take; a token that does not answer by then is unreachable.
PROBE_TIMEOUT_SEC = 10.0


def interval_from_env() -> float:
    try:
        return max(0.1, float(os.environ.get(INTERVAL_ENV) or DEFAULT_INTERVAL_SEC))
    except ValueError:
        return DEFAULT_INTERVAL_SEC


class HsmProbe:
    def __init__(self, state: Any, interval: float | None = None) -> None:
        self.state = state
        self.interval = interval if interval is not None else interval_from_env()
        #: profile uuid -> reachable at the last check; replaced whole, so readers need no lock.
        self._results: dict[str, bool] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="hsm-probe", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def results(self) -> dict[str, bool]:
        return self._results

    def reachable(self, profile_uuid: str) -> bool | None:
        """The last check's answer, or None if the profile was not checked yet by this process."""
        return self._results.get(profile_uuid)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.probe_once()
            except Exception as exc:  # noqa: BLE001 - e.g. the database is down: keep the last answers
                log.warning("HSM profile probe round failed (%s)", type(exc).__name__)
            self._stop.wait(self.interval)

    def probe_once(self) -> dict[str, bool]:
        from ..models.kms import HsmProfile
        from ..services.kms import profiles
        from ..services.kms.runtime import runtime_of

        configs = []
        with self.state.db.transaction(readonly=True) as s:
            for row in s.scalars(select(HsmProfile).where(HsmProfile.removed.is_(None))):
                try:
                    configs.append((row.uuid, row.protocol, profiles.load_config(s, self.state.master_key, row)))
                except Exception:  # noqa: BLE001 - details that cannot be opened: the profile cannot work
                    configs.append((row.uuid, row.protocol, None))
        runtime = runtime_of(self.state)
        policy = retry.RetryPolicy(retries=0, delay_ms=0, timeout_sec=PROBE_TIMEOUT_SEC, mode=retry.Mode.HANDOFF)
        results = {}
        for uuid, protocol, config in configs:
            results[uuid] = config is not None and self._check(runtime, policy, protocol, config)
        self._results = results
        return results

    @staticmethod
    def _check(runtime: Any, policy: retry.RetryPolicy, protocol: str, config: Any) -> bool:
        try:
            provider = runtime.provider(protocol)
            return bool(retry.call(policy, "health check", lambda: provider.health_check(config)))
        except Exception as exc:  # noqa: BLE001 - any failure means not reachable; the text may name the token
            log.info("HSM profile %s is not reachable (%s)", config.uuid, type(exc).__name__)
            return False
