"""Three cloudstack-kms servers, one per node of the private Galera cluster, on a fresh database.

They share one master key file and one primary-storage directory (as NFS would be) and reach
the database each through its own node. Their connections ask for causal reads
(``wsrep_sync_wait=1``, docs/operations.md): a job or session written through one node is
then read through another as soon as it committed, so clients need no stickiness.
"""
from __future__ import annotations

import secrets
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from urllib.parse import quote

from tests.support.client import Client
from tests.support.galera import GaleraCluster
from tests.support.server import KmsEnv, ServerProcess

#: Causal reads on every connection of a server (what docs/operations.md tells operators to set).
CAUSAL_READS = "&init_command=" + quote("SET SESSION wsrep_sync_wait=1")


@dataclass
class Farm:
    galera: GaleraCluster
    envs: list[KmsEnv]
    servers: list[ServerProcess]
    keys: dict[str, str]
    data_dir: Path
    database: str

    def admin(self, i: int) -> Client:
        """The root admin's signed client on server ``i`` (0-based; server ``i`` uses node ``i + 1``)."""
        return Client(self.servers[i].url, self.keys["apikey"], self.keys["secretkey"])

    def start_server(self, i: int) -> ServerProcess:
        """(Re)start server ``i`` on its node, logging after what it logged before."""
        server = ServerProcess(self.envs[i], log_path=self.data_dir / f"server-{i + 1}.log").start(timeout=60)
        self.servers[i] = server
        return server

    def server_of_msid(self, msid: int, through: int) -> int | None:
        """The index of the server whose worker process registered ``msid`` in ``mshost``
        (its pid is the worker's, a child of the server process), asked through node ``through + 1``."""
        from tests.support.dbtools import query
        rows = query(self.envs[through], "SELECT pid FROM mshost WHERE msid = :m", m=msid)
        if not rows:
            return None
        pid = rows[0][0]
        for i, server in enumerate(self.servers):
            if server.proc is not None and server.proc.pid in (pid, _parent(pid)):
                return i
        return None


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


@contextmanager
def farm_on(galera: GaleraCluster, data_dir: Path, label: str = "farm") -> Iterator[Farm]:
    """A new database on the cluster, ``db init`` through node 1, and one server per node."""
    database = f"kms_{label}_{secrets.token_hex(3)}"
    galera.create_database(database)
    envs = [KmsEnv(db_url=galera.url(i, database) + CAUSAL_READS, data_dir=data_dir) for i in (1, 2, 3)]
    envs[0].init()
    galera.wait_applied(2)
    galera.wait_applied(3)
    farm = Farm(galera, envs, [], envs[0].admin_keys(), data_dir, database)
    try:
        for i in range(3):
            farm.servers.append(None)  # type: ignore[arg-type]
            farm.start_server(i)
        yield farm
    finally:
        for server in farm.servers:
            if server is not None:
                server.stop()
