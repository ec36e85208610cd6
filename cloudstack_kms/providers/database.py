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
from collections import OrderedDict
from contextlib import contextmanager
from typing import Iterator

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import delete, select, text
from sqlalchemy.orm import Session

from ..db import current_session
from ..models.base import utcnow
from ..models.kms import DatabaseKekObject
from ..security.masterkey import MasterKeyError
from .base import (MECH_AES_GCM, InvalidProviderParameter, KekNotFound, KeyAlreadyExists, KmsProvider,
                   ProfileConfig, UnwrapError, WrapContext, check_key_bits, pack, unpack)
from .context import ProviderContext

_NONCE = 12
_CACHE_SIZE = 4096


class DatabaseProvider(KmsProvider):
    name = "database"
    options = ()
    runs_inline = True

    def __init__(self, context: ProviderContext) -> None:
        self.db = context.db
        self.master_key = context.master_key
        # Opened KEKs, by label: opening means a master-key decryption and a query per use.
        self._cache: OrderedDict[str, AESGCM] = OrderedDict()
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

    def create_kek(self, profile: ProfileConfig, label: str, key_bits: int) -> str:
        check_key_bits(key_bits)
        if not label:
            raise InvalidProviderParameter("KEK label must not be empty")
        material = os.urandom(key_bits // 8)
        with self._session() as session:
            exists = session.scalar(select(DatabaseKekObject.id).where(DatabaseKekObject.label == label,
                                                                       DatabaseKekObject.removed.is_(None)))
            if exists:
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

    def _kek(self, label: str) -> AESGCM:
        with self._lock:
            aead = self._cache.get(label)
            if aead is not None:
                self._cache.move_to_end(label)
                return aead
        with self._session() as session:
            row = session.scalars(select(DatabaseKekObject).where(DatabaseKekObject.label == label,
                                                                  DatabaseKekObject.removed.is_(None))).first()
            if row is None:
                raise KekNotFound(label)
            try:
                material = self.master_key.open(row.key_material.decode("ascii"), self._seal_context(label))
            except MasterKeyError:
                raise KekNotFound(f"{label} (stored material does not open with this server's master key)") from None
            row.last_used = utcnow()
        aead = AESGCM(material)
        with self._lock:
            self._cache[label] = aead
            if len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return aead

    def wrap(self, profile: ProfileConfig, label: str, plaintext: bytes, context: WrapContext) -> bytes:
        nonce = os.urandom(_NONCE)
        return pack(MECH_AES_GCM, nonce + self._kek(label).encrypt(nonce, bytes(plaintext), context.aad()))

    def unwrap(self, profile: ProfileConfig, label: str, blob: bytes, context: WrapContext) -> bytearray:
        mechanism, payload = unpack(blob)
        if mechanism != MECH_AES_GCM or len(payload) < _NONCE + 16:
            raise UnwrapError()
        aead = self._kek(label)
        try:
            return bytearray(aead.decrypt(payload[:_NONCE], payload[_NONCE:], context.aad()))
        except InvalidTag:
            raise UnwrapError() from None

    def health_check(self, profile: ProfileConfig) -> bool:
        with self._session() as session:
            return session.execute(text("SELECT 1")).scalar() == 1

    def invalidate(self, profile_id: int) -> None:
        with self._lock:
            self._cache.clear()
