"""A private, throw-away MariaDB server for fault tests (stop it, kill it, start it again).

The shared server at ``KMS_TEST_MYSQL_URL`` must never be stopped, so a test that takes the
database away starts its own ``mariadbd``: a fresh datadir in a temporary directory, a free
loopback port, root without a password. Small InnoDB sizes keep start-up well under a second.

    db = MariaDBInstance.create()       # pytest.skip()s when MariaDB is not installed
    url = db.create_database("kms")     # mysql+mysqldb://root@127.0.0.1:<port>/kms?charset=utf8mb4
    db.stop(); db.start()               # clean shutdown, then the same datadir and port again
    db.kill(); db.start()               # SIGKILL, then InnoDB crash recovery
    db.cleanup()
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from .server import KmsEnv, ServerProcess, free_port

# Sizes only a test can live with; they make install and start take a fraction of a second.
_SERVER_OPTIONS = (
    "--innodb-buffer-pool-size=16M",
    "--innodb-log-file-size=8M",
    "--performance-schema=OFF",
    "--skip-name-resolve",
    "--skip-log-bin",
    "--max-connections=300",
)


def _binaries() -> tuple[str, str] | str:
    """(mariadbd, mariadb-install-db), or why they cannot be used."""
    server = shutil.which("mariadbd") or shutil.which("mariadbd", path="/usr/sbin:/usr/local/sbin") \
        or shutil.which("mysqld", path="/usr/sbin:/usr/local/sbin")
    install = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
    if not server or not install:
        return "a private MariaDB server needs mariadbd and mariadb-install-db (apt-get install mariadb-server)"
    return server, install


def unavailable() -> str | None:
    """Why no private MariaDB server can be started here, or None."""
    found = _binaries()
    return found if isinstance(found, str) else None


class MariaDBInstance:
    def __init__(self, base_dir: Path, port: int | None = None) -> None:
        found = _binaries()
        if isinstance(found, str):
            raise RuntimeError(found)
        self.mariadbd, self.install_db = found
        self.base_dir = base_dir
        self.datadir = base_dir / "data"
        self.socket = base_dir / "mysql.sock"  # short path: a unix socket path has ~107 bytes
        self.pid_file = base_dir / "mariadbd.pid"
        self.error_log = base_dir / "mariadbd.err"
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None

    # ------------------------------------------------------------ set-up
    @classmethod
    def create(cls, timeout: float = 30.0) -> "MariaDBInstance":
        """Install a datadir and start the server. Skips the test when MariaDB is missing, unless
        ``KMS_REQUIRE_MYSQL`` is set: then a missing MariaDB fails it."""
        reason = unavailable()
        if reason:
            if os.environ.get("KMS_REQUIRE_MYSQL", "") not in ("", "0"):
                pytest.fail(f"KMS_REQUIRE_MYSQL is set, but {reason}")
            pytest.skip(reason)
        instance = cls(Path(tempfile.mkdtemp(prefix="kms-mdb-")))
        try:
            instance.install()
            instance.start(timeout=timeout)
        except BaseException:
            instance.cleanup()
            raise
        return instance

    def _user_args(self) -> list[str]:
        return ["--user=root"] if os.geteuid() == 0 else []  # mariadbd refuses to run as root without it

    def install(self) -> None:
        done = subprocess.run(
            [self.install_db, "--no-defaults", f"--datadir={self.datadir}",
             "--auth-root-authentication-method=normal", "--skip-test-db", *self._user_args(),
             *_SERVER_OPTIONS], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"mariadb-install-db failed ({done.returncode}): {done.stdout[-2000:]}"
                               f"{done.stderr[-2000:]}")

    # ------------------------------------------------------------ life cycle
    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 30.0) -> float:
        """Start on the same datadir and port; returns once a client can connect (monotonic time)."""
        if self.running:
            raise RuntimeError("mariadbd is already running")
        with open(self.base_dir / "mariadbd.out", "ab") as out:
            self.proc = subprocess.Popen(
                [self.mariadbd, "--no-defaults", f"--datadir={self.datadir}", *self._user_args(),
                 "--skip-networking=0", "--bind-address=127.0.0.1", f"--port={self.port}",
                 f"--socket={self.socket}", f"--pid-file={self.pid_file}", f"--log-error={self.error_log}",
                 *_SERVER_OPTIONS],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        return self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 30.0) -> float:
        import MySQLdb

        deadline = time.monotonic() + timeout
        while True:
            if not self.running:
                raise RuntimeError(f"mariadbd exited ({self.proc.returncode if self.proc else None}): "
                                   f"{self.error_tail()}")
            try:
                MySQLdb.connect(host="127.0.0.1", port=self.port, user="root", connect_timeout=2).close()
                return time.monotonic()
            except MySQLdb.OperationalError:
                if time.monotonic() > deadline:
                    self.kill()
                    raise RuntimeError(f"mariadbd did not accept connections within {timeout}s: "
                                       f"{self.error_tail()}") from None
                time.sleep(0.02)

    def stop(self, timeout: float = 30.0) -> float:
        """Clean shutdown (SIGTERM, as ``systemctl stop`` does); returns when the process has exited."""
        if self.running:
            assert self.proc is not None
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise RuntimeError(f"mariadbd did not shut down within {timeout}s: {self.error_tail()}") from None
        return time.monotonic()

    def kill(self) -> float:
        """SIGKILL, as a crash or the OOM killer would; the next start runs crash recovery."""
        if self.running:
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait()
        return time.monotonic()

    def cleanup(self) -> None:
        self.kill()
        shutil.rmtree(self.base_dir, ignore_errors=True)

    # ------------------------------------------------------------ use
    def url(self, database: str = "") -> str:
        return f"mysql+mysqldb://root@127.0.0.1:{self.port}/{database}" + ("?charset=utf8mb4" if database else "")

    def create_database(self, name: str) -> str:
        """Create ``name`` (utf8mb4, as the shared test databases) and return its SQLAlchemy URL."""
        import MySQLdb

        conn = MySQLdb.connect(host="127.0.0.1", port=self.port, user="root", connect_timeout=5)
        try:
            conn.cursor().execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci")
        finally:
            conn.close()
        return self.url(name)

    def error_tail(self, chars: int = 3000) -> str:
        try:
            return self.error_log.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no error log)"


@contextmanager
def server_on_private_mariadb(data_dir: Path, database: str, workers: int = 1) -> Iterator[
        tuple[MariaDBInstance, KmsEnv, ServerProcess]]:
    """A private ``mariadbd`` (:meth:`MariaDBInstance.create`, which skips the test when it cannot
    run here), ``db init`` of ``database`` on it and one server: for tests that stop the database
    under a running server. Everything is stopped and removed afterwards."""
    db = MariaDBInstance.create()
    server = None
    try:
        kms = KmsEnv(db_url=db.create_database(database), data_dir=data_dir)
        kms.init()
        server = ServerProcess(kms, workers=workers, log_path=data_dir / "server.log").start()
        yield db, kms, server
    finally:
        if server is not None:
            server.stop()
        db.cleanup()
