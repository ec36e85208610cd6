"""Shared set-up of the KMS benchmarks (``bench/rewrap.py``, ``bench/migrate.py``).

Everything is private to a run and removed at the end (unless ``--keep``): a database made for
the run (a new MariaDB/MySQL database under ``--db-url``, or a SQLite file), a data directory
with its master key, and for the ``pkcs11`` provider a SoftHSM2 configuration and token in a
temporary directory. ``SOFTHSM2_CONF`` is set before anything loads the PKCS#11 library.
"""
from __future__ import annotations

import io
import os
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

MODULE = os.environ.get("KMS_TEST_PKCS11_MODULE", "/usr/lib/softhsm/libsofthsm2.so")
USER_PIN = "1234"
SO_PIN = "5678"


def softhsm_missing() -> str | None:
    if not Path(MODULE).exists():
        return f"PKCS#11 module {MODULE} not found (apt-get install softhsm2)"
    if shutil.which("softhsm2-util") is None:
        return "softhsm2-util not found (apt-get install softhsm2)"
    return None


def setup_softhsm(root: Path) -> None:
    tokens = root / "tokens"
    tokens.mkdir(parents=True)
    conf = root / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
                    "slots.removable = false\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)


def init_token(label: str) -> None:
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", USER_PIN,
                    "--so-pin", SO_PIN], check=True, capture_output=True)


def describe_url(url: str) -> str:
    """The URL without a password, for printing."""
    from sqlalchemy.engine import make_url
    return make_url(url).render_as_string(hide_password=True)


@dataclass
class BenchDb:
    """A database made for one run: ``url`` to use, dropped by :meth:`drop`."""

    base_url: str
    tmp: Path
    label: str
    url: str = ""
    _mysql_name: str | None = None

    def create(self) -> "BenchDb":
        if self.base_url.startswith("mysql"):
            from sqlalchemy import create_engine, text
            name = f"kmsbench_{self.label}_{secrets.token_hex(4)}"
            engine = create_engine(self.base_url.rstrip("/") + "/")
            with engine.begin() as conn:
                conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"))
            engine.dispose()
            self._mysql_name = name
            self.url = self.base_url.rstrip("/") + f"/{name}?charset=utf8mb4"
        else:
            self.url = f"sqlite:///{self.tmp / (self.label + '.db')}"
        return self

    def drop(self) -> None:
        if self._mysql_name:
            from sqlalchemy import create_engine, text
            engine = create_engine(self.base_url.rstrip("/") + "/")
            with engine.begin() as conn:
                conn.execute(text(f"DROP DATABASE IF EXISTS `{self._mysql_name}`"))
            engine.dispose()


@dataclass
class World:
    """An initialised database with the server's services, used in this process."""

    db: Any
    master_key: Any
    runtime: Any
    state: Any
    data_dir: Path
    extra: dict = field(default_factory=dict)

    def dispose(self) -> None:
        self.runtime.providers.close()
        self.db.dispose()


def init_world(url: str, data_dir: Path) -> World:
    """``db init`` in this process, then the pieces a server process would hold."""
    from cloudstack_kms.cli import db_init
    from cloudstack_kms.config import Settings
    from cloudstack_kms.db import Database
    from cloudstack_kms.providers.context import ProviderContext
    from cloudstack_kms.security.masterkey import MasterKey
    from cloudstack_kms.services.kms.runtime import KmsRuntime

    settings = Settings(db_url=url, data_dir=data_dir, master_key_file=data_dir / "master.key")
    db_init(settings, out=io.StringIO())
    db = Database(url)
    master_key = MasterKey.load(settings.master_key_file)
    runtime = KmsRuntime.create(ProviderContext(db=db, master_key=master_key))
    # What Rewrapper and the migration functions read from a server's AppState.
    state = SimpleNamespace(db=db, master_key=master_key, services={"kms": runtime})
    return World(db=db, master_key=master_key, runtime=runtime, state=state, data_dir=data_dir)


def set_config(world: World, **values: Any) -> None:
    """``updateConfiguration`` for names given with ``_`` for ``.`` (e.g. ``kms_rewrap_batch_size``)."""
    from sqlalchemy import update

    from cloudstack_kms.models import Configuration
    with world.db.transaction() as s:
        for name, value in values.items():
            s.execute(update(Configuration).where(Configuration.name == name.replace("_", "."))
                      .values(value=str(value).lower() if isinstance(value, bool) else str(value)))


def make_profile(world: World, protocol: str, token_label: str | None = None):  # noqa: ANN201
    """The seeded public ``database`` profile, or a new public pkcs11 profile on ``token_label``."""
    from sqlalchemy import select

    from cloudstack_kms.models.kms import HsmProfile
    from cloudstack_kms.services.kms import profiles
    with world.db.transaction() as s:
        if protocol == "database":
            return s.scalars(select(HsmProfile).where(HsmProfile.protocol == "database")
                             .order_by(HsmProfile.id)).first()
        profile = HsmProfile(name=f"bench-{token_label}", protocol="pkcs11", account_id=2, domain_id=1,
                             enabled=True, is_public=True)
        s.add(profile)
        s.flush()
        profiles.store_details(s, world.master_key, profile,
                               {"library": MODULE, "token_label": token_label, "pin": USER_PIN})
        return profile


def make_key(world: World, profile_id: int, name: str):  # noqa: ANN201
    """A KMS key of the admin account in the default zone (KEK version 1 in the profile)."""
    from sqlalchemy import select

    from cloudstack_kms.models import Account, DataCenter
    from cloudstack_kms.models.kms import HsmProfile
    from cloudstack_kms.services.kms import keys
    with world.db.transaction() as s:
        owner = s.get(Account, 2)
        zone = s.scalars(select(DataCenter).order_by(DataCenter.id)).first()
        profile = s.get(HsmProfile, profile_id)
        return keys.create_key(s, world.runtime, world.master_key, owner=owner, name=name, description=None,
                               zone=zone, profile=profile, key_bits=256)


def rotate(world: World, key_id: int, target_profile_id: int | None = None):  # noqa: ANN201
    from cloudstack_kms.models import Account, User
    from cloudstack_kms.models.kms import HsmProfile, KmsKey
    from cloudstack_kms.services.kms import rotation
    with world.db.transaction() as s:
        key = s.get(KmsKey, key_id)
        target = s.get(HsmProfile, target_profile_id) if target_profile_id else None
        return rotation.rotate(s, world.runtime, world.master_key, key, s.get(Account, 2), s.get(User, 2),
                               target, None)


def fmt_rate(n: float) -> str:
    return f"{n:,.0f}"


def tmpdir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))


def common_args(parser: Any, default_providers: str) -> None:
    """The options every KMS bench takes."""
    parser.add_argument("--db-url", default=os.environ.get("KMS_BENCH_DB_URL", ""),
                        help="MySQL/MariaDB server URL without database (default: a SQLite file)")
    parser.add_argument("--providers", default=default_providers)
    parser.add_argument("--target-sec", type=float, default=60.0)
    parser.add_argument("--keep", action="store_true", help="keep the databases and files")


def run_providers(prefix: str, providers_csv: str, db_url: str, keep: bool, run: Any) -> tuple[list[str], bool]:
    """Set up SoftHSM2 if pkcs11 is asked for, call ``run(provider, tmp)`` for each provider, clean up.

    Returns (the providers that ran, True when every run met its target).
    """
    providers = [p.strip() for p in providers_csv.split(",") if p.strip()]
    tmp = tmpdir(prefix)
    try:
        if "pkcs11" in providers:
            missing = softhsm_missing()
            if missing:
                print(f"pkcs11 skipped: {missing}")
                providers.remove("pkcs11")
            else:
                setup_softhsm(tmp / "softhsm")
        print(f"database: {describe_url(db_url) if db_url else 'SQLite file'}")
        results = [run(p, tmp) for p in providers]
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return providers, bool(results) and all(results)
