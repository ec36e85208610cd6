"""Fixtures building real providers: a fresh database of the backend under test (SQLite, or
MariaDB with ``KMS_TEST_MYSQL_URL``), a master key, and fresh SoftHSM2 tokens.

Nothing here mocks python-pkcs11: every pkcs11 test talks to SoftHSM2 through the one
configuration the run set in ``SOFTHSM2_CONF`` (see ``tests/conftest.py``).
"""
from __future__ import annotations

import itertools
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pytest

from cloudstack_kms.db import Database
from cloudstack_kms.providers.base import ProfileConfig
from cloudstack_kms.providers.context import ProviderContext
from cloudstack_kms.providers.database import DatabaseProvider
from cloudstack_kms.providers.pkcs11 import Pkcs11Provider
from cloudstack_kms.security.masterkey import MasterKey
from tests.support.softhsm import MODULE, USER_PIN, SoftHsm

# Profile ids are the key of the pkcs11 provider's connection cache: never reuse one in a run.
_profile_ids = itertools.count(10_000)


@dataclass
class Token:
    """A SoftHSM2 token made for one test, and the directory SoftHSM2 keeps it in."""

    label: str
    directory: Path
    pin: str = USER_PIN


@pytest.fixture(scope="module")
def provider_db(database_factory) -> Iterator[Database]:
    db = Database(database_factory("providers"))
    db.create_schema()
    yield db
    db.dispose()


@pytest.fixture(scope="module")
def master_key(tmp_path_factory) -> MasterKey:
    return MasterKey.create(tmp_path_factory.mktemp("masterkey") / "master.key")


@pytest.fixture(scope="module")
def provider_context(provider_db, master_key) -> ProviderContext:
    return ProviderContext(db=provider_db, master_key=master_key)


@pytest.fixture()
def database_provider(provider_context) -> DatabaseProvider:
    return DatabaseProvider(provider_context)


@pytest.fixture()
def database_profile() -> ProfileConfig:
    return ProfileConfig(id=next(_profile_ids), uuid=str(uuid.uuid4()), name="HSM Database Provider",
                         protocol="database", revision="r1")


@pytest.fixture()
def token_factory(softhsm: SoftHsm) -> Callable[..., Token]:
    """Makes fresh tokens (unique labels); ``Token.directory`` is the one ``init_token`` created."""

    def make(prefix: str = "t", pin: str = USER_PIN) -> Token:
        label = f"{prefix}-{secrets.token_hex(6)}"[:32]
        before = set(softhsm.tokendir.iterdir())
        softhsm.init_token(label, pin=pin)
        created = set(softhsm.tokendir.iterdir()) - before
        assert len(created) == 1, f"init_token made {len(created)} directories"
        return Token(label=label, directory=created.pop(), pin=pin)

    return make


@pytest.fixture()
def hsm_token(token_factory) -> Token:
    return token_factory()


def pkcs11_profile_for(softhsm: SoftHsm, token: Token | None, *, revision: str = "r1",
                       profile_id: int | None = None, **details: str) -> ProfileConfig:
    """A pkcs11 profile on ``token`` (by label), or on whatever ``details`` select when None."""
    if token is not None:
        merged = {**softhsm.details(token.label, pin=token.pin), **details}
    else:
        merged = {"library": MODULE, "pin": USER_PIN, **details}
    merged = {k: v for k, v in merged.items() if v is not None}
    return ProfileConfig(id=profile_id if profile_id is not None else next(_profile_ids), uuid=str(uuid.uuid4()),
                         name=f"softhsm-{token.label if token else 'slot'}", protocol="pkcs11", details=merged,
                         revision=revision)


@pytest.fixture()
def pkcs11_profile(softhsm, hsm_token) -> ProfileConfig:
    return pkcs11_profile_for(softhsm, hsm_token)


@pytest.fixture()
def pkcs11_provider(provider_context) -> Iterator[Pkcs11Provider]:
    provider = Pkcs11Provider(provider_context)
    yield provider
    provider.close()  # closes the sessions and logs the test's tokens out


def new_label(prefix: str = "kek") -> str:
    return f"{prefix}-{secrets.token_hex(8)}"
