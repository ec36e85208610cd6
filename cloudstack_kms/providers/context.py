"""What providers may use from the server: the database (for their private tables) and the master key."""
from __future__ import annotations

from dataclasses import dataclass

from ..db import Database
from ..security.masterkey import MasterKey


@dataclass
class ProviderContext:
    db: Database
    master_key: MasterKey
