"""The ``database`` provider: KEKs are random bytes sealed with the server's master key.

KEKs live in ``kms_database_kek_objects`` (the provider's own table). Wrapping is AES-GCM
via ``cryptography`` with the context as associated data, so a blob only opens for the
row and key it was made for — upstream used empty AAD.

When called inside a transaction of the server (:func:`cloudstack_kms.db.current_session`),
the provider writes in that transaction: a KEK row and the key row that uses it commit or
roll back together.
"""
from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from typing import Iterator

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from ..config import kek_cache_limits
from ..db import current_session
from ..models.base import utcnow
from ..models.kms import DatabaseKekObject
from ..security.masterkey import MasterKeyError
from .base import (MECH_AES_GCM, InvalidProviderParameter, KekNotFound, KeyAlreadyExists, KmsProvider,
                   ProfileConfig, UnwrapError, WrapContext, check_key_bits, pack, unpack, zero)
from .context import ProviderContext

_NONCE = 12


class DatabaseProvider(KmsProvider):
    name = "database"
    options = ()
    runs_inline = True

    def __init__(self, context: ProviderContext) -> None:
        self.db = context.db
        self.master_key = context.master_key
        # Opened KEKs, by label, with when they were opened: opening means a query and a
        # master-key decryption per use. Each entry is a KEK in clear in memory (inside AESGCM,
        # out of reach of zeroing), so the cache is small and an entry lives at most the TTL
        # from its opening (expired ones are dropped at the provider's next KEK lookup).
        self._cache: OrderedDict[str, tuple[float, AESGCM]] = OrderedDict()
        self._cache_size, self._cache_ttl = kek_cache_limits()
        self._lock = threading.Lock()

    @contextmanager
    def _session(self) -> Iterator[Session]:
        ambient = current_session()
        if ambient is not None:
            yield ambient
        else:
            with self.db.transaction() as session:
                yield session

    @staticmethod
    def _seal_context(label: str) -> str:
        return f"kms_database_kek_objects:{label}"

    def create_kek(self, profile: ProfileConfig, label: str, key_bits: int, adopt: bool = False) -> str:
        """``adopt``: as for the pkcs11 provider, a KEK of the same size already under the caller's
        own label (left by an earlier attempt of the same call) is used instead of refused."""
        check_key_bits(key_bits)
        if not label:
            raise InvalidProviderParameter("KEK label must not be empty")
        material = os.urandom(key_bits // 8)
        with self._session() as session:
            exists = session.execute(select(DatabaseKekObject.id, DatabaseKekObject.key_bits).where(
                DatabaseKekObject.label == label, DatabaseKekObject.removed.is_(None))).first()
            if exists:
                if adopt and exists.key_bits == key_bits:
                    return label
                raise KeyAlreadyExists(f"KEK with label {label} already exists")
            sealed = self.master_key.seal(material, self._seal_context(label))
            session.add(DatabaseKekObject(label=label, object_id=label.encode()[:64], key_bits=key_bits,
                                          key_material=sealed.encode("ascii")))
            session.flush()
        return label

    def delete_kek(self, profile: ProfileConfig, label: str) -> None:
        with self._session() as session:
            session.execute(delete(DatabaseKekObject).where(DatabaseKekObject.label == label))
        with self._lock:
            self._cache.pop(label, None)

    def kek_available(self, profile: ProfileConfig, label: str) -> bool:
        with self._session() as session:
            return session.scalar(select(DatabaseKekObject.id).where(
                DatabaseKekObject.label == label, DatabaseKekObject.removed.is_(None))) is not None

    def _prune(self, now: float) -> None:
        """Drop expired entries, then the least recently used beyond the size; lock held."""
        for label in [k for k, (opened, _) in self._cache.items() if now - opened >= self._cache_ttl]:
            del self._cache[label]
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def _kek(self, label: str) -> AESGCM:
        now = time.monotonic()
        with self._lock:
            self._prune(now)
            entry = self._cache.get(label)
            if entry is not None:
                self._cache.move_to_end(label)
                return entry[1]
        with self._session() as session:
            row = session.scalars(select(DatabaseKekObject).where(DatabaseKekObject.label == label,
                                                                  DatabaseKekObject.removed.is_(None))).first()
            if row is None:
                raise KekNotFound(label)
            try:
                material = self.master_key.open(row.key_material.decode("ascii"), self._seal_context(label))
            except MasterKeyError:  # logged by the master key, naming the row
                raise KekNotFound(f"{label} (stored material does not open with this server's master key: "
                                  "wrong master key file or corrupted value)") from None
            row.last_used = utcnow()
        aead = AESGCM(material)
        del material  # our only reference to the clear bytes (immutable: they cannot be zeroed)
        with self._lock:
            self._cache[label] = (now, aead)
            self._prune(now)
        return aead

    def wrap(self, profile: ProfileConfig, label: str, plaintext: bytes, context: WrapContext) -> bytes:
        nonce = os.urandom(_NONCE)
        # AESGCM takes a bytearray as is: no immutable (unzeroable) copy of the DEK.
        return pack(MECH_AES_GCM, nonce + self._kek(label).encrypt(nonce, plaintext, context.aad()))

    def unwrap(self, profile: ProfileConfig, label: str, blob: bytes, context: WrapContext) -> bytearray:
        mechanism, payload = unpack(blob)
        if mechanism != MECH_AES_GCM or len(payload) < _NONCE + 16:
            raise UnwrapError()
        aead = self._kek(label)
        plain = bytearray(len(payload) - _NONCE - 16)
        try:
            if hasattr(aead, "decrypt_into"):  # newer cryptography: straight into our buffer, no bytes copy
                aead.decrypt_into(payload[:_NONCE], payload[_NONCE:], context.aad(), plain)
            else:
                plain[:] = aead.decrypt(payload[:_NONCE], payload[_NONCE:], context.aad())
            return plain
        except InvalidTag:
            zero(plain)  # decrypt_into leaves the unauthenticated plaintext there
            raise UnwrapError() from None

    def health_check(self, profile: ProfileConfig) -> bool:
        with self._session() as session:
            return session.execute(text("SELECT 1")).scalar() == 1

    def invalidate(self, profile_id: int) -> None:
        with self._lock:
            self._cache.clear()
