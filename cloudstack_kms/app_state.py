"""The per-process state shared by requests, jobs and background workers."""
from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .config import Settings
from .db import Database
from .security.masterkey import MasterKey

if TYPE_CHECKING:
    from .api.command import Registry
    from .jobs.worker import JobWorker


def new_msid() -> int:
    """A random 48-bit id for this server process (upstream derives one from the MAC)."""
    return secrets.randbits(47) + 1


@dataclass
class AppState:
    settings: Settings
    db: Database
    master_key: MasterKey
    registry: "Registry"
    msid: int = field(default_factory=new_msid)
    hostname: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    worker: "JobWorker | None" = None
    services: dict[str, Any] = field(default_factory=dict)
