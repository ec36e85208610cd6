"""Shared fixtures: one real database per run (SQLite, or a fresh MariaDB database when
``KMS_TEST_MYSQL_URL`` is set), and a real server process on a free port."""
from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

import pytest

from cloudstack_kms.storage import qemu
from tests.support.client import Client
from tests.support.softhsm import MODULE, SoftHsm
from tests.support.softhsm import available as softhsm_available
from tests.support.server import KmsEnv, ServerProcess, extra_commands_env

MYSQL_URL = os.environ.get("KMS_TEST_MYSQL_URL", "")  # e.g. mysql+mysqldb://root@127.0.0.1:3306

# One SoftHSM2 configuration for the whole run: the library reads it once per process, and the
# server processes started by tests inherit it through the environment.
_SOFTHSM = SoftHsm(Path(tempfile.mkdtemp(prefix="kms-softhsm-"))).setup()
os.environ["SOFTHSM2_CONF"] = str(_SOFTHSM.conf)
# Servers load only allow-listed PKCS#11 modules; the one the tests use (KMS_TEST_PKCS11_MODULE
# may point elsewhere than the defaults) must be on it, for this process and the servers.
os.environ.setdefault("KMS_PKCS11_LIBRARIES", MODULE)


def _required(flag: str) -> bool:
    """CI (``CI=true``) and ``tools/test.sh`` (``KMS_REQUIRE_HSM``/``KMS_REQUIRE_QEMU``) want a
    missing SoftHSM2 or qemu to fail the run: a skipped test there would pass unnoticed."""
    return os.environ.get(flag, "") not in ("", "0") or os.environ.get("CI", "").lower() in ("1", "true", "yes")


#: Why SoftHSM2/qemu tests would skip, where skipping is forbidden (the reasons pytest reports).
_FORBIDDEN_SKIPS = [reason for flag, reason in (("KMS_REQUIRE_HSM", softhsm_available()),
                                                 ("KMS_REQUIRE_QEMU", qemu.available()))
                    if reason and _required(flag)]


@pytest.fixture(scope="session")
def softhsm() -> SoftHsm:
    """The run's SoftHSM2; make tokens with ``softhsm.init_token(label)`` (unique labels per test)."""
    reason = softhsm_available()
    if reason:
        pytest.skip(reason)
    return _SOFTHSM


def _mysql_database(name: str) -> str:
    from sqlalchemy import create_engine, text
    engine = create_engine(MYSQL_URL.rstrip("/") + "/")
    with engine.begin() as conn:
        conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"))
    engine.dispose()
    return MYSQL_URL.rstrip("/") + f"/{name}?charset=utf8mb4"


def _drop_mysql_database(name: str) -> None:
    from sqlalchemy import create_engine, text
    engine = create_engine(MYSQL_URL.rstrip("/") + "/")
    with engine.begin() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
    engine.dispose()


@pytest.fixture(scope="session")
def database_factory(tmp_path_factory):
    """Makes fresh, empty databases of the backend under test; drops them at the end."""
    made: list[str] = []

    def make(label: str = "db") -> str:
        if MYSQL_URL:
            name = f"kmstest_{label}_{secrets.token_hex(4)}"
            made.append(name)
            return _mysql_database(name)
        return f"sqlite:///{tmp_path_factory.mktemp(label) / 'kms.db'}"

    yield make
    for name in made:
        _drop_mysql_database(name)


@pytest.fixture(scope="session")
def backend() -> str:
    return "mysql" if MYSQL_URL else "sqlite"


@pytest.fixture(scope="session")
def env_factory(database_factory, tmp_path_factory):
    """Makes an initialised database + data directory (``db init`` run once)."""

    def make(label: str = "env", **extra_env: str) -> KmsEnv:
        kms = KmsEnv(db_url=database_factory(label), data_dir=Path(tmp_path_factory.mktemp(label + "-data")),
                     extra_env=extra_env)
        kms.init()
        return kms

    return make


@pytest.fixture(scope="session")
def kms_env(env_factory) -> KmsEnv:
    return env_factory("main")


@pytest.fixture(scope="session")
def server(kms_env):
    """The shared server; tests make their own tenants so they do not depend on each other."""
    proc = ServerProcess(kms_env).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def admin_keys(kms_env) -> dict[str, str]:
    return kms_env.admin_keys()


@pytest.fixture()
def admin(server, admin_keys) -> Client:
    """A signed-request client for the root admin."""
    return Client(server.url, admin_keys["apikey"], admin_keys["secretkey"])


@pytest.fixture(scope="session")
def ext_env(env_factory) -> KmsEnv:
    """A database whose servers also load the test-only commands (``testAsyncEcho``)."""
    return env_factory("ext", **extra_commands_env())


@pytest.fixture(scope="session")
def ext_server(ext_env):
    proc = ServerProcess(ext_env).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def ext_admin_keys(ext_env) -> dict[str, str]:
    return ext_env.admin_keys()


@pytest.fixture()
def ext_admin(ext_server, ext_admin_keys) -> Client:
    """A signed-request client for the root admin of the server with the test commands."""
    return Client(ext_server.url, ext_admin_keys["apikey"], ext_admin_keys["secretkey"])


def pytest_sessionstart(session):
    if os.environ.get("KMS_REQUIRE_MYSQL") and not MYSQL_URL:
        raise pytest.UsageError("KMS_REQUIRE_MYSQL is set but KMS_TEST_MYSQL_URL is not")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On the MariaDB run, a skipped database test is a failure, not a pass; so is a test
    skipped for want of SoftHSM2 or qemu where they are required (see ``_required``)."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("KMS_REQUIRE_MYSQL") and report.skipped and item.get_closest_marker("mysql") is not None:
        report.outcome = "failed"
        report.longrepr = f"{item.nodeid} was skipped on the MariaDB run"
    if report.skipped and _FORBIDDEN_SKIPS:
        why = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        missing = [reason for reason in _FORBIDDEN_SKIPS if reason in why]
        if missing:
            report.outcome = "failed"
            report.longrepr = f"{item.nodeid} would be skipped ({missing[0]}), but CI/KMS_REQUIRE_* require it to run"


@pytest.fixture(scope="module")
def immediate_key_deletion(server, admin_keys):
    """deleteKMSKey as upstream has it (no waiting period) for one module, on the shared server;
    the setting is restored after it. Modules that test upstream's deletion use it with
    ``pytestmark = pytest.mark.usefixtures("immediate_key_deletion")``; the waiting period itself
    is tested in tests/apicommands/test_kms_key_deletion.py."""
    from tests.support.client import Client
    from tests.support.volumes import config

    with config(Client(server.url, admin_keys["apikey"], admin_keys["secretkey"]),
                "kms.key.deletion.pending.days", "0"):
        yield
