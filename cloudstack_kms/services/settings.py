"""Global settings declared in code and stored in ``configuration``.

Each :class:`ConfigKey` declares its type, default and validation once; ``db init`` seeds
the rows, ``updateConfiguration`` validates against the declaration, and services read
the live value with :func:`get_value` (no restart needed for dynamic keys).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..cache import TtlCache
from ..db import cache_of
from ..models import Configuration
from ..models.base import utcnow

SCOPE_GLOBAL = 1


@dataclass(frozen=True)
class ConfigKey:
    name: str
    default: str
    description: str
    value_type: type = str  # int, bool or str
    category: str = "Advanced"
    component: str = "management-server"
    is_dynamic: bool = True
    choices: tuple[str, ...] | None = None
    minimum: int | None = None
    maximum: int | None = None
    check: Callable[[Any], str | None] | None = None

    @property
    def type_name(self) -> str:
        return {int: "Number", bool: "Boolean"}.get(self.value_type, "String")

    def parse(self, raw: str) -> Any:
        """The typed value, or ValueError with the text an operator should read."""
        if self.value_type is bool:
            if raw.strip().lower() not in ("true", "false"):
                raise ValueError(f"Please enter either 'true' or 'false' for the parameter {self.name}")
            return raw.strip().lower() == "true"
        if self.value_type is int:
            try:
                value = int(raw.strip())
            except ValueError:
                raise ValueError(f"There was error in trying to parse value: {raw}. Please enter a valid "
                                 f"integer value for parameter {self.name}") from None
            if self.choices and str(value) not in self.choices:
                raise ValueError(f"Invalid value for parameter {self.name}, value must be one of: "
                                 f"{', '.join(self.choices)}")
            if self.minimum is not None and value < self.minimum:
                raise ValueError(f"Invalid value for parameter {self.name}, value must be at least {self.minimum}")
            if self.maximum is not None and value > self.maximum:
                raise ValueError(f"Invalid value for parameter {self.name}, value must be at most {self.maximum}")
            return value
        if self.choices and raw not in self.choices:
            raise ValueError(f"Invalid value for parameter {self.name}, value must be one of: {', '.join(self.choices)}")
        return raw

    def normalise(self, raw: str) -> str:
        value = self.parse(raw)
        return str(value).lower() if isinstance(value, bool) else str(value)


KMS = "cloud-kms"
KEYS: dict[str, ConfigKey] = {k.name: k for k in [
    ConfigKey("kms.dek.size.bits", "256", "Size in bits of the data encryption keys generated for volumes",
              int, component=KMS, choices=("128", "192", "256")),
    ConfigKey("kms.retry.count", "3", "Number of extra attempts for a failed KMS provider operation",
              int, component=KMS, minimum=0, maximum=100),
    ConfigKey("kms.retry.delay.ms", "1000", "Initial delay in milliseconds between KMS retries (doubles each attempt)",
              int, component=KMS, minimum=0, maximum=3_600_000),
    ConfigKey("kms.operation.timeout.sec", "30", "Timeout in seconds of one KMS provider operation",
              int, component=KMS, minimum=1, maximum=3600),
    ConfigKey("kms.rewrap.batch.size", "50", "Number of wrapped keys rewrapped per batch after a KEK rotation",
              int, component=KMS, minimum=1, maximum=1_000_000),
    ConfigKey("kms.rewrap.interval.ms", "300000", "Interval in milliseconds between runs of the background "
              "rewrap worker; 0 or less disables it", int, component=KMS),
    ConfigKey("kms.key.deletion.pending.days", "7", "Days a KMS key waits after deleteKMSKey before its key "
              "encryption keys are destroyed; meanwhile it cannot be used and cancelKMSKeyDeletion restores it. "
              "The date is fixed when the deletion is requested; 0 deletes at once", int, component=KMS,
              minimum=0, maximum=365),
    ConfigKey("storage.volume.images", "true", "Create a LUKS/qcow2 image on primary storage for each volume; "
              "false keeps volumes as metadata only (keys are still generated and wrapped)", bool,
              category="Storage", component="storage"),
    ConfigKey("storage.luks.iter.time.ms", "2000", "LUKS key-derivation time (qemu encrypt.iter-time) in "
              "milliseconds for new encrypted volumes", int, category="Storage", component="storage", minimum=1,
              maximum=60_000),
    ConfigKey("default.page.size", "500", "Default page size for API list calls", int, minimum=1,
              maximum=1_000_000),
    ConfigKey("job.cancel.threshold.minutes", "60", "Time (in minutes) for async-jobs to be forcely cancelled "
              "if it has been in process for long", int, minimum=1),
    # Upstream's ApiRateLimitService keys (Config.ApiLimit*), with its texts and category.
    ConfigKey("api.throttling.enabled", "false", "Enable/Disable Api rate limit", bool),
    ConfigKey("api.throttling.interval", "1", "Time interval (in seconds) to reset API count", int, minimum=1,
              maximum=86_400),
    ConfigKey("api.throttling.max", "25", "Max allowed number of APIs within fixed interval", int, minimum=1),
    ConfigKey("api.throttling.cachesize", "50000", "Account based API count cache size (upstream's; not used "
              "here: the counts are kept in the database, shared by every server, so no cache needs sizing)", int,
              minimum=1),
    # The web UI reads this one after every setting it saves (and fails in the browser when the
    # setting is missing); this server manages no hypervisors and only shows it.
    ConfigKey("hypervisor.custom.display.name", "Custom", "Display name for custom hypervisor (upstream's; "
              "shown by the web UI, not used by this server)"),
]}


def seed(session: Session) -> int:
    """Insert the declared keys that are missing; keep operators' values. Returns rows added."""
    existing = set(session.scalars(select(Configuration.name)))
    added = 0
    for key in KEYS.values():
        if key.name in existing:
            continue
        session.add(Configuration(name=key.name, category=key.category, instance="DEFAULT",
                                  component=key.component, value=key.default, default_value=key.default,
                                  description=key.description, updated=utcnow(), scope=SCOPE_GLOBAL,
                                  is_dynamic=key.is_dynamic, display_text=key.name,
                                  kind="Select" if key.choices else None,
                                  options=",".join(key.choices) if key.choices else None))
        added += 1
    return added


#: Longest time a setting changed by another process or server goes unseen here.
CACHE_TTL_SEC = 0.5
_STORED = "stored"


def get_values(session: Session, *names: str) -> list[Any]:
    """Several live settings, typed (an unreadable stored value falls back to the default).

    Settings are read on almost every call (page size, retry policy), so the stored values are
    cached per database for :data:`CACHE_TTL_SEC`; a change committed by this process clears the
    cache at once, and a transaction with a change of its own not yet committed reads the table.
    """
    stored = _stored_values(session)
    values = []
    for name in names:
        key = KEYS[name]
        raw = stored.get(name)
        try:
            values.append(key.parse(raw if raw is not None else key.default))
        except ValueError:
            values.append(key.parse(key.default))
    return values


def _stored_values(session: Session) -> dict[str, str | None]:
    cache = _cache_of(session)
    if cache is None or _changes_settings(session):
        return _read_stored(session)
    return cache.get_or_load(_STORED, lambda: _read_stored(session))


def _read_stored(session: Session) -> dict[str, str | None]:
    return dict(session.execute(select(Configuration.name, Configuration.value)
                                .where(Configuration.name.in_(list(KEYS)))).all())


def _changes_settings(session: Session) -> bool:
    return any(isinstance(o, Configuration) for o in (*session.new, *session.dirty)) or \
        Configuration in session.info.get("changed_models", ())


def _cache_of(session: Session) -> TtlCache | None:
    """The settings cache of the session's database (None for sessions made elsewhere)."""
    return cache_of(session, "settings", CACHE_TTL_SEC, (Configuration,), max_entries=1)


def get_value(session: Session, name: str) -> Any:
    return get_values(session, name)[0]
