"""A private, throw-away 3-node MariaDB Galera cluster on loopback ports, for tests.

Built on tests/support/mariadb_instance.py: each node is a ``MariaDBInstance`` (own datadir and
MySQL port, the same small InnoDB sizes, clean stop / SIGKILL / start) whose server reads its
settings from its own option file (``mariadbd --defaults-file=...``; /etc/mysql is never read,
and the SST scripts that ``mariadbd`` runs get the same file) with ``wsrep_on=ON``.

    cluster = GaleraCluster.create(databases=("kms",))   # pytest.skip()s when Galera is missing
    cluster.url(2, "kms")      # mysql+mysqldb://root@127.0.0.1:<port of node 2>/kms?charset=utf8mb4
    cluster.stop_node(3); cluster.start_node(3)          # clean leave, rejoin by IST
    cluster.kill_node(3); cluster.start_node(3)          # SIGKILL, --wsrep-recover, rejoin
    cluster.status(1)["wsrep_cluster_size"]              # "3"
    cluster.cleanup()

Nodes are numbered from 1, as Galera operators do. Node 1 bootstraps the cluster
(``--wsrep-new-cluster``); nodes 2 and 3 join it and get their data by SST (``rsync``).

Every node runs as user ``nobody``: the joiner's rsync daemon, started by root, would drop to
``nobody`` and could then not write into a datadir of root's; running the whole node as
``nobody`` keeps every file of every datadir (installed, received by SST, written later) owned
by one user, so a later SST onto an old datadir works too.
"""
from __future__ import annotations

import atexit
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from .mariadb_instance import _SERVER_OPTIONS, MariaDBInstance
from .mariadb_instance import unavailable as mariadb_unavailable
from .server import free_port

GALERA_LIBRARY = "/usr/lib/galera/libgalera_smm.so"
#: The user the nodes (and so the rsync daemon of an SST) run as.
NODE_USER = "nobody"
#: Galera waits this long for a silent peer before it drops it from the cluster (defaults:
#: 5 s and 15 s). Shorter makes a killed node leave sooner; not so short that a loaded 2-core
#: machine makes a healthy node look dead.
_SUSPECT_TIMEOUT = "PT4S"
_INACTIVE_TIMEOUT = "PT8S"

# Galera itself: what every node of a cluster must have.
_WSREP_SETTINGS = {
    "wsrep_on": "ON",
    "wsrep_provider": GALERA_LIBRARY,
    "binlog_format": "ROW",
    "default_storage_engine": "InnoDB",
    "innodb_autoinc_lock_mode": "2",
    "wsrep_sst_method": "rsync",
    # Galera replicates InnoDB tables by primary key; refuse tables without one at CREATE time,
    # so that a schema change without a primary key fails these tests instead of production.
    "wsrep_mode": "REQUIRED_PRIMARY_KEY",
    # Durability is the cluster's (a write is on every node); these only make tests faster.
    "innodb_flush_log_at_trx_commit": "2",
    "innodb_doublewrite": "0",
    "wsrep_slave_threads": "2",
}


def unavailable() -> str | None:
    """Why no private Galera cluster can be started here, or None."""
    reason = mariadb_unavailable()
    if reason:
        return reason
    if not os.path.exists(GALERA_LIBRARY):
        return f"a Galera cluster needs {GALERA_LIBRARY} (apt-get install galera-4)"
    for tool, package in (("rsync", "rsync"), ("wsrep_sst_rsync", "mariadb-server"),
                          ("my_print_defaults", "mariadb-server"), ("ss", "iproute2")):
        if not shutil.which(tool) and not shutil.which(tool, path="/usr/sbin:/sbin"):
            return f"Galera SST by rsync needs {tool} (apt-get install {package})"
    try:
        pwd.getpwnam(NODE_USER)
    except KeyError:
        return f"Galera SST by rsync needs the user {NODE_USER}"
    if os.geteuid() != 0:
        return f"the Galera test cluster runs its nodes as {NODE_USER}, which needs root"
    return None


def _option_lines() -> list[str]:
    """``_SERVER_OPTIONS`` (the single server's sizes) as option-file lines."""
    return [option.removeprefix("--") for option in _SERVER_OPTIONS]


class GaleraNode(MariaDBInstance):
    """One node: a ``MariaDBInstance`` started from its own option file, with Galera on."""

    def __init__(self, base_dir: Path, index: int, cluster_name: str) -> None:
        super().__init__(base_dir)
        self.index = index
        self.name = f"node{index}"
        self.cluster_name = cluster_name
        self.gcomm_port = free_port()
        self.ist_port = free_port()
        self.sst_port = free_port()
        self.cnf = base_dir / "my.cnf"
        self.cluster_address = ""  # set by the cluster once every node has its ports
        self._log_mark = 0  # error log size at the last start

    # ------------------------------------------------------------ set-up
    def _user_args(self) -> list[str]:
        return [f"--user={NODE_USER}"]

    def write_config(self) -> None:
        provider_options = ";".join((
            f"base_port={self.gcomm_port}",
            f"gmcast.listen_addr=tcp://127.0.0.1:{self.gcomm_port}",
            f"ist.recv_addr=127.0.0.1:{self.ist_port}",
            "gcache.size=32M",
            "gcache.page_size=32M",
            "pc.wait_prim=yes",
            "pc.wait_prim_timeout=PT60S",
            "pc.recovery=false",  # a restarted node joins the others, never restores an old view
            f"evs.suspect_timeout={_SUSPECT_TIMEOUT}",
            f"evs.inactive_timeout={_INACTIVE_TIMEOUT}",
            "evs.inactive_check_period=PT0.5S",
            "evs.keepalive_period=PT0.5S",
            "evs.join_retrans_period=PT0.2S",
        ))
        settings = {
            "user": NODE_USER,
            "datadir": str(self.datadir),
            "port": str(self.port),
            "bind-address": "127.0.0.1",
            "skip-networking": "0",
            "socket": str(self.socket),
            "pid-file": str(self.pid_file),
            "log-error": str(self.error_log),
            **_WSREP_SETTINGS,
            "wsrep_cluster_name": self.cluster_name,
            "wsrep_cluster_address": self.cluster_address,
            "wsrep_node_name": self.name,
            "wsrep_node_address": "127.0.0.1",
            "wsrep_sst_receive_address": f"127.0.0.1:{self.sst_port}",
            "wsrep_provider_options": f'"{provider_options}"',
        }
        lines = ["[mysqld]", *_option_lines(), *(f"{key}={value}" for key, value in settings.items())]
        self.cnf.write_text("\n".join([*lines, ""]))
        self.cnf.chmod(0o644)

    def make_usable_by_node_user(self) -> None:
        """The node (and its SST's rsync daemon) runs as ``nobody``: give it the whole tree."""
        user = pwd.getpwnam(NODE_USER)
        self.datadir.mkdir(exist_ok=True)
        for root, dirs, files in os.walk(self.base_dir):
            for name in (root, *(os.path.join(root, n) for n in (*dirs, *files))):
                os.chown(name, user.pw_uid, user.pw_gid, follow_symlinks=False)
        self.base_dir.chmod(0o755)

    # ------------------------------------------------------------ life cycle
    def start(self, timeout: float = 120.0, new_cluster: bool = False) -> float:  # type: ignore[override]
        """Start from the option file; returns once a client can connect (the node may still be
        joining: see ``GaleraCluster.wait_synced``)."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        self.make_usable_by_node_user()
        extra = ["--wsrep-new-cluster"] if new_cluster else []
        position = self.recover_position()
        if position:
            extra.append(f"--wsrep-start-position={position}")
        self._log_mark = self._log_size()
        with open(self.base_dir / "mariadbd.out", "ab") as out:
            # --defaults-file must come first; it also stops the server reading /etc/mysql.
            self.proc = subprocess.Popen([self.mariadbd, f"--defaults-file={self.cnf}", *extra],
                                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        return self.wait_ready(timeout)

    def recover_position(self) -> str | None:
        """After a crash ``grastate.dat`` has no seqno; like ``galera_recovery`` (what systemd
        runs before ``mariadbd``), ask InnoDB for it, so that the node can rejoin by IST."""
        grastate = self.datadir / "grastate.dat"
        if not grastate.exists() or not re.search(r"^seqno:\s+-1\s*$", grastate.read_text(), re.MULTILINE):
            return None
        if not (self.datadir / "ibdata1").exists():
            return None  # never got its data: it needs a full SST anyway
        log = self.base_dir / "wsrep-recover.log"
        log.unlink(missing_ok=True)
        subprocess.run([self.mariadbd, f"--defaults-file={self.cnf}", "--wsrep-recover",
                        f"--log-error={log}", "--skip-networking"], capture_output=True, timeout=120, check=False)
        try:
            found = re.findall(r"WSREP: Recovered position: (\S+:-?\d+)", log.read_text(errors="replace"))
        except OSError:
            return None
        return found[-1] if found and not found[-1].endswith(":-1") else None

    def kill(self) -> float:
        """SIGKILL the server and whatever it started (an SST script, its rsync daemon)."""
        if self.proc is not None and self.proc.returncode is None:  # not reaped: its pid is still ours
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)  # the node leads its own process group
            except ProcessLookupError:
                pass
            self.proc.wait()
        return time.monotonic()

    def stop(self, timeout: float = 60.0) -> float:
        done = super().stop(timeout)
        self.kill()  # nothing of the node's group outlives it
        return done

    # ------------------------------------------------------------ use
    def connect(self, database: str = "", timeout: float = 5.0, **kwargs):
        import MySQLdb

        return MySQLdb.connect(host="127.0.0.1", port=self.port, user="root", database=database,
                               connect_timeout=int(timeout), charset="utf8mb4", **kwargs)

    def status(self) -> dict[str, str]:
        conn = self.connect()
        try:
            cur = conn.cursor()
            cur.execute("SHOW GLOBAL STATUS LIKE 'wsrep%'")
            return {name: value.decode() if isinstance(value, bytes) else value for name, value in cur.fetchall()}
        finally:
            conn.close()

    def _log_size(self) -> int:
        try:
            return self.error_log.stat().st_size
        except OSError:
            return 0

    def log_since_start(self) -> str:
        """The error log written since the last ``start``."""
        try:
            with open(self.error_log, "rb") as f:
                f.seek(self._log_mark)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def last_state_transfer(self) -> str:
        """How the node got its state at the last start: "IST", "SST", or "none"."""
        log = self.log_since_start()
        if "rsync SST completed on joiner" in log:
            return "SST"
        if "rsync IST completed on joiner" in log or re.search(r"Receiving IST: \d+ writesets", log):
            return "IST"
        return "none"


class GaleraCluster:
    """``n`` Galera nodes (3 by default) on loopback ports, in one temporary directory."""

    def __init__(self, n: int = 3, base_dir: Path | None = None) -> None:
        reason = unavailable()
        if reason:
            raise RuntimeError(reason)
        self.base_dir = base_dir or Path(tempfile.mkdtemp(prefix="kms-galera-"))
        self.base_dir.chmod(0o755)  # mkdtemp's 0700 would keep the nodes (user nobody) out
        self.cluster_name = f"kms-test-{secrets.token_hex(4)}"  # never joins another run's cluster
        self.nodes = [GaleraNode(self._node_dir(i), i, self.cluster_name) for i in range(1, n + 1)]
        address = "gcomm://" + ",".join(f"127.0.0.1:{node.gcomm_port}" for node in self.nodes)
        for node in self.nodes:
            node.cluster_address = address
            node.write_config()
        self.timings: dict[str, float] = {}
        self._cleaned = False
        atexit.register(self.cleanup)  # even if the run dies before the fixture's finaliser

    def _node_dir(self, i: int) -> Path:
        path = self.base_dir / f"n{i}"  # short: the unix socket path is limited to ~107 bytes
        path.mkdir(parents=True, exist_ok=True)
        return path

    # ------------------------------------------------------------ set-up
    @classmethod
    def create(cls, n: int = 3, databases: tuple[str, ...] = (), timeout: float = 180.0) -> GaleraCluster:
        """Make and start a cluster. Skips the test when MariaDB, Galera or rsync is missing,
        unless ``KMS_REQUIRE_GALERA=1``: then it fails it."""
        reason = unavailable()
        if reason:
            if os.environ.get("KMS_REQUIRE_GALERA", "") not in ("", "0"):
                pytest.fail(f"KMS_REQUIRE_GALERA is set, but {reason}")
            pytest.skip(reason)
        cluster = cls(n)
        try:
            cluster.start(timeout=timeout)
            for name in databases:
                cluster.create_database(name)
        except BaseException:
            cluster.cleanup()
            raise
        return cluster

    def start(self, timeout: float = 180.0) -> None:
        """Bootstrap node 1, then join the others one by one (each by SST from a synced node)."""
        began = time.monotonic()
        first = self.nodes[0]
        first.make_usable_by_node_user()
        first.install()
        self.timings["install"] = time.monotonic() - began
        first.start(timeout=timeout, new_cluster=True)
        self.wait_synced(1, size=1, timeout=timeout)
        self.timings["bootstrap"] = time.monotonic() - began
        for node in self.nodes[1:]:
            joined = time.monotonic()
            node.start(timeout=timeout)
            self.wait_synced(node.index, size=node.index, timeout=timeout)
            self.timings[f"join {node.name}"] = time.monotonic() - joined
        self.wait_cluster_size(len(self.nodes), timeout=timeout)
        self.timings["start"] = time.monotonic() - began

    # ------------------------------------------------------------ life cycle
    def node(self, i: int) -> GaleraNode:
        if not 1 <= i <= len(self.nodes):
            raise IndexError(f"no node {i}: nodes are numbered 1..{len(self.nodes)}")
        return self.nodes[i - 1]

    def running_nodes(self) -> list[GaleraNode]:
        return [node for node in self.nodes if node.running]

    def stop_node(self, i: int, timeout: float = 60.0) -> None:
        """Clean shutdown (SIGTERM): the node leaves the cluster, which shrinks at once."""
        self.node(i).stop(timeout)
        self.wait_cluster_size(len(self.running_nodes()), timeout=timeout)

    def kill_node(self, i: int, wait: bool = False, timeout: float = 60.0) -> None:
        """SIGKILL, as a crash would. The others notice within ``evs.suspect_timeout`` (meanwhile
        commits through them wait); ``wait``: return only once they have dropped the node."""
        self.node(i).kill()
        if wait:
            self.wait_cluster_size(len(self.running_nodes()), timeout=timeout)

    def start_node(self, i: int, timeout: float = 180.0) -> str:
        """Start a stopped or killed node again: it rejoins (by IST when the others' gcache still
        holds what it missed). Returns once it is Synced and every running node sees it.
        Returns how it got its state: "IST", "SST" or "none"."""
        node = self.node(i)
        node.start(timeout=timeout)
        size = len(self.running_nodes())
        self.wait_synced(i, size=size, timeout=timeout)
        self.wait_cluster_size(size, timeout=timeout)
        return node.last_state_transfer()

    def cleanup(self) -> None:
        """Stop every node (SIGKILL: the data is thrown away) and remove the temporary tree."""
        if self._cleaned:
            return
        self._cleaned = True
        for node in self.nodes:
            node.kill()
        shutil.rmtree(self.base_dir, ignore_errors=True)
        atexit.unregister(self.cleanup)

    # ------------------------------------------------------------ waiting
    def status(self, i: int) -> dict[str, str]:
        """Node ``i``'s ``SHOW STATUS LIKE 'wsrep%'`` as a dict."""
        return self.node(i).status()

    def wait_synced(self, i: int, size: int | None = None, timeout: float = 120.0) -> dict[str, str]:
        """Until node ``i`` is Synced in a Primary component (of ``size`` nodes, when given)."""
        node = self.node(i)
        deadline = time.monotonic() + timeout
        last: dict[str, str] | str = {}
        while True:
            if not node.running:
                raise RuntimeError(f"{node.name} exited while joining: {node.error_tail()}")
            try:
                last = node.status()
                if (last.get("wsrep_local_state_comment") == "Synced"
                        and last.get("wsrep_cluster_status") == "Primary"
                        and last.get("wsrep_ready") == "ON"
                        and (size is None or last.get("wsrep_cluster_size") == str(size))):
                    return last
            except Exception as exc:  # noqa: BLE001 - not accepting connections yet
                last = repr(exc)
            if time.monotonic() > deadline:
                raise RuntimeError(f"{node.name} not Synced/Primary (size {size}) within {timeout}s: "
                                   f"{_brief(last)}\n{node.error_tail()}")
            time.sleep(0.05)

    def wait_cluster_size(self, size: int, timeout: float = 120.0) -> None:
        """Until every running node is Synced and sees ``size`` nodes."""
        for node in self.running_nodes():
            self.wait_synced(node.index, size=size, timeout=timeout)

    # ------------------------------------------------------------ use
    def url(self, i: int, database: str = "") -> str:
        """SQLAlchemy URL of ``database`` through node ``i``."""
        return self.node(i).url(database)

    def create_database(self, name: str, through: int = 1) -> str:
        """Create ``name`` through node ``through`` (it replicates to every node); returns that
        node's URL of it."""
        return self.node(through).create_database(name)

    def connect(self, i: int, database: str = "", **kwargs):
        """A MySQLdb connection to node ``i`` (autocommit off, as MySQLdb's default)."""
        return self.node(i).connect(database, **kwargs)

    def wait_applied(self, i: int) -> None:
        """Until node ``i`` has applied every writeset committed anywhere before this call.

        Galera is only *virtually* synchronous: a COMMIT returns once the writeset is certified,
        and the other nodes apply it a little later, so a read through another node right after
        may not see it. ``wsrep_sync_wait`` makes a read wait for that node to catch up."""
        conn = self.connect(i)
        try:
            cur = conn.cursor()
            cur.execute("SET SESSION wsrep_sync_wait = 1")
            cur.execute("SELECT 1")
            cur.fetchall()
        finally:
            conn.close()


def _brief(status: dict[str, str] | str) -> str:
    if isinstance(status, str):
        return status
    keys = ("wsrep_local_state_comment", "wsrep_cluster_status", "wsrep_cluster_size", "wsrep_ready",
            "wsrep_connected")
    return ", ".join(f"{key}={status.get(key)}" for key in keys)
