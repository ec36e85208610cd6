"""Where the server keeps its state, and how that is chosen.

Every location can be set on the command line or in the environment; the defaults put a
SQLite database and the master key in a per-user data directory so that a first run needs
nothing but Python.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def default_data_dir() -> Path:
    """``$KMS_DATA_DIR``, else ``$XDG_DATA_HOME/cloudstack-kms``, else ``~/.local/share/cloudstack-kms``."""
    if os.environ.get("KMS_DATA_DIR"):
        return Path(os.environ["KMS_DATA_DIR"])
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(base) / "cloudstack-kms"


#: PKCS#11 modules HSM profiles may load when ``KMS_PKCS11_LIBRARIES`` is not set: SoftHSM2 at
#: the paths its Debian/Ubuntu and Fedora/RHEL packages install it to. A profile's ``library``
#: is loaded into the process holding the master key, so an API caller must not be able to name
#: any shared object; these are package-managed files only root can replace.
DEFAULT_PKCS11_LIBRARIES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
    "/usr/lib64/softhsm/libsofthsm2.so",
)


def pkcs11_libraries() -> tuple[str, ...]:
    """The PKCS#11 modules this server may load: ``$KMS_PKCS11_LIBRARIES`` (paths separated by
    ``:``; set but empty allows none), else :data:`DEFAULT_PKCS11_LIBRARIES`.

    Read from the environment, never from the API-settable ``configuration`` table: only the
    operator of the host decides what code runs in the server. ``serve --pkcs11-library``
    sets the variable for its worker processes.
    """
    value = os.environ.get("KMS_PKCS11_LIBRARIES")
    if value is None:
        return DEFAULT_PKCS11_LIBRARIES
    return tuple(p.strip() for p in value.split(os.pathsep) if p.strip())


def kek_cache_limits() -> tuple[int, float]:
    """(entries, seconds) for the database provider's cache of opened KEKs:
    ``$KMS_KEK_CACHE_SIZE`` (default 64) and ``$KMS_KEK_CACHE_TTL_SEC`` (default 60).

    Small and short on purpose: every entry is a KEK in clear in process memory. A miss costs
    one query and one master-key decryption.
    """
    return (max(0, int(os.environ.get("KMS_KEK_CACHE_SIZE") or 64)),
            max(0.0, float(os.environ.get("KMS_KEK_CACHE_TTL_SEC") or 60)))


@dataclass
class Settings:
    """Process-level settings (not the ``configuration`` table, which holds live API settings)."""

    db_url: str = ""
    data_dir: Path = field(default_factory=default_data_dir)
    master_key_file: Path | None = None
    # Number of job worker threads per server process.
    job_threads: int = 4
    # How long a server may stay silent before its running jobs are failed by another one.
    mshost_timeout_sec: float = 30.0
    heartbeat_interval_sec: float = 5.0
    start_background: bool = True
    # Run the job of a short async command (a metadata-only createVolume) in its request's
    # transaction: the job row is written already finished, so a client sees the result at its
    # first poll. Off (``KMS_SHORT_JOBS_IN_REQUEST=false``): every job waits for a worker thread.
    short_jobs_in_request: bool = field(default_factory=lambda: os.environ.get(
        "KMS_SHORT_JOBS_IN_REQUEST", "true").lower() not in ("0", "false", "no"))
    # Mark session cookies ``Secure`` (browsers then send them over HTTPS only). On when the server
    # is reached over HTTPS, directly or through a TLS-terminating proxy: ``serve --secure-cookies``
    # or ``KMS_SECURE_COOKIES=true``.
    secure_cookies: bool = field(default_factory=lambda: os.environ.get("KMS_SECURE_COOKIES", "").lower()
                                 in ("1", "true", "yes"))

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        if not self.db_url:
            self.db_url = os.environ.get("KMS_DB_URL") or f"sqlite:///{self.data_dir / 'cloudstack-kms.db'}"
        if self.master_key_file is None:
            env = os.environ.get("KMS_MASTER_KEY_FILE")
            self.master_key_file = Path(env) if env else self.data_dir / "master.key"
        self.master_key_file = Path(self.master_key_file)
