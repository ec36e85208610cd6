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

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        if not self.db_url:
            self.db_url = os.environ.get("KMS_DB_URL") or f"sqlite:///{self.data_dir / 'cloudstack-kms.db'}"
        if self.master_key_file is None:
            env = os.environ.get("KMS_MASTER_KEY_FILE")
            self.master_key_file = Path(env) if env else self.data_dir / "master.key"
        self.master_key_file = Path(self.master_key_file)
