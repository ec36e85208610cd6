"""Running the real server as a subprocess on a free port, the way operators run it."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests


REPO_ROOT = Path(__file__).resolve().parents[2]
TEST_COMMANDS_PACKAGE = "tests.support.testcommands"


def extra_commands_env() -> dict[str, str]:
    """Environment that makes a server also load the test-only commands (``testAsyncEcho``)."""
    pythonpath = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {"KMS_EXTRA_COMMAND_PACKAGES": TEST_COMMANDS_PACKAGE, "PYTHONPATH": pythonpath}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class KmsEnv:
    """One database + data directory, shared by every server process started on it."""

    db_url: str
    data_dir: Path
    admin_password: str = ""
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({"KMS_DB_URL": self.db_url, "KMS_DATA_DIR": str(self.data_dir),
                    "KMS_MASTER_KEY_FILE": str(self.data_dir / "master.key")})
        env.update(self.extra_env)
        return env

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "cloudstack_kms.cli", *args], env=self.env,
                              capture_output=True, text=True, check=check, timeout=300)

    def init(self) -> str:
        out = self.cli("db", "init").stdout
        for line in out.splitlines():
            if line.startswith("admin password (shown once): "):
                self.admin_password = line.split(": ", 1)[1]
        return out

    def admin_keys(self) -> dict[str, str]:
        return json.loads(self.cli("user", "keys", "admin").stdout)


class ServerProcess:
    def __init__(self, kms: KmsEnv, port: int | None = None, workers: int = 1, log_path: Path | None = None,
                 ui_dir: Path | None = None, extra_args: tuple[str, ...] = ()) -> None:
        self.kms = kms
        self.port = port or free_port()
        self.workers = workers
        self.ui_dir = ui_dir
        self.extra_args = extra_args
        self.log_path = log_path or kms.data_dir / f"server-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/client/api"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> "ServerProcess":
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "cloudstack_kms.cli", "serve", "--host", "127.0.0.1", "--port",
                 str(self.port), "--workers", str(self.workers),
                 *(["--ui-dir", str(self.ui_dir)] if self.ui_dir else []), *self.extra_args], env=self.kms.env,
                stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-3000:]}")
            try:
                requests.get(self.url, params={"command": "listZones", "response": "json"}, timeout=5)
                return self
            except requests.RequestException:  # not listening yet, or the worker still booting
                time.sleep(0.1)
        raise RuntimeError("server did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def kill9(self) -> None:
        """Kill the whole process group at once, as a crash would."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")
