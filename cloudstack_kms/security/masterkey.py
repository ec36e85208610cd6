"""The server's own master key, used to encrypt secrets kept in the database.

Secrets at rest (user secret keys, sensitive HSM profile details, legacy passphrases,
database-provider KEKs, sensitive parameters of queued jobs) are sealed with AES-256-GCM.
The associated data names the row and column a value belongs to, so a ciphertext copied to
another row fails to open.

The master key file is a keyring (:mod:`.keyring`): its first key seals, every key opens,
so values can move from an old key to a new one while servers keep serving
(``cloudstack-kms master-key rotate``). Values are written ``mk2:<key id>:<Base64>``; values
of earlier versions, ``mk1:<Base64>`` without an id, are tried against every key.

A server re-reads the file when it changed (a new inode, mtime or size): before every seal
(seals are rare, a ``stat`` is cheap), so a promoted key seals from the next value on; and
before failing to open a value, so a value sealed elsewhere with a key this process has not
read yet opens.
"""
from __future__ import annotations

import base64
import binascii
import logging
import os
import threading
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import CloudRuntimeError  # a leaf module (no imports): no cycle
from . import keyring as keyring_file
from .keyring import Keyring, KeyEntry, KeyringError

log = logging.getLogger(__name__)
_FORMAT = b"v1"
_PREFIX = "mk1:"  # earlier versions: no key id
_PREFIX_V2 = "mk2:"  # mk2:<key id>:<Base64 of nonce + ciphertext>


class MasterKeyError(Exception):
    """The master key is missing, unreadable, or does not open a stored value."""


class SealedValueError(MasterKeyError, CloudRuntimeError):
    """A stored value does not open: the server has another master key, or the value was damaged.

    Also a 530 API error, so every API path that meets one answers with this text instead of
    the generic one; the dispatcher and the job worker show it to root admins only. The text
    names the value by its sealing context (table, row, name), never its content.
    """

    def __init__(self, context: str) -> None:
        self.context = context
        text = (f"Sealed value {context} cannot be opened with this server's master key: "
                "wrong master key file or corrupted value")
        super().__init__(text)  # ApiError's: sets .text and the exception message


class MasterKey:
    """Seals and opens small secrets with a keyring. Never logs or reprs key material.

    ``MasterKey(key)`` is a keyring of that one key, in memory; :meth:`load` reads a keyring
    file and follows its changes.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise MasterKeyError("master key must be 32 bytes")
        self._path: Path | None = None
        self._lock = threading.Lock()
        self._install(Keyring((KeyEntry(bytes(key)),)), None)

    def __repr__(self) -> str:  # never show key material
        return "MasterKey(<hidden>)"

    def _install(self, ring: Keyring, stamp: tuple[int, int, int] | None) -> None:
        # One tuple, swapped whole: readers on other threads see the old keyring or the new one.
        self._state = (ring.sealing.id, {e.id: AESGCM(e.key) for e in ring.entries}, stamp)

    @classmethod
    def load(cls, path: Path) -> "MasterKey":
        path = Path(path)
        stamp = keyring_file.file_stamp(path)
        try:
            ring = keyring_file.read(path)
        except KeyringError as exc:
            raise MasterKeyError(str(exc)) from None
        self = cls.__new__(cls)
        self._path = path
        self._lock = threading.Lock()
        self._install(ring, stamp)
        return self

    @classmethod
    def create(cls, path: Path) -> "MasterKey":
        """Write a new random key with mode 0600; refuses to overwrite an existing file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        key = os.urandom(32)
        keyring_file.write_new(path, Keyring((KeyEntry(key),)).render())
        return cls.load(path)

    @classmethod
    def load_or_create(cls, path: Path) -> "MasterKey":
        return cls.load(path) if Path(path).exists() else cls.create(path)

    # ------------------------------------------------------------ the keyring
    @property
    def sealing_key_id(self) -> str:
        return self._state[0]

    @property
    def key_ids(self) -> list[str]:
        return list(self._state[1])

    def refresh(self) -> bool:
        """Re-read the keyring file if it changed since it was read; True if it was re-read.

        A file that cannot be read or parsed leaves the keys in use as they are (logged once
        per change of the file): a server keeps serving on a botched copy of the file.
        """
        if self._path is None:
            return False
        stamp = keyring_file.file_stamp(self._path)
        if stamp is None or stamp == self._state[2]:
            return False
        with self._lock:
            if stamp == self._state[2]:
                return False
            try:
                ring = keyring_file.read(self._path)
            except KeyringError as exc:
                log.warning("master key file not re-read, keeping the keys in use: %s", exc)
                self._state = (self._state[0], self._state[1], stamp)
                return False
            before = self._state[0]
            self._install(ring, stamp)
        if ring.sealing.id != before:
            log.info("master key file re-read: new values are sealed with key %s (was %s)", ring.sealing.id, before)
        return True

    @staticmethod
    def key_id_of(sealed: str) -> str | None:
        """The key id written in a sealed value (None for an ``mk1:`` value or anything else)."""
        if sealed and sealed.startswith(_PREFIX_V2):
            key, sep, _ = sealed[len(_PREFIX_V2):].partition(":")
            return key if sep else None
        return None

    # ------------------------------------------------------------ sealing
    def seal(self, plaintext: bytes, context: str) -> str:
        self.refresh()  # a key promoted by a rotation seals from the next value on
        sealing_id, keys, _ = self._state
        nonce = os.urandom(12)
        ct = keys[sealing_id].encrypt(nonce, plaintext, _FORMAT + b"|" + context.encode())
        return f"{_PREFIX_V2}{sealing_id}:" + base64.b64encode(nonce + ct).decode()

    def open(self, sealed: str, context: str) -> bytes:
        """The plaintext of a value made by :meth:`seal` with the same context.

        Anything else (a key not in the keyring, another row's value, a damaged or missing
        value) raises :class:`SealedValueError` and logs which value it was.
        """
        try:
            kid, blob = _parse(sealed)
            aad = _FORMAT + b"|" + context.encode()
            plain = self._try_open(kid, blob, aad)
            if plain is None and self.refresh():  # a key this process has not read yet
                plain = self._try_open(kid, blob, aad)
            if plain is None:
                if kid is not None and kid not in self._state[1]:
                    log.error("sealed value %s is under master key %s, which is not in the keyring", context, kid)
                raise ValueError("does not open")
            return plain
        except ValueError:  # short nonce, bad Base64, unknown key, wrong key, wrong row
            error = SealedValueError(context)
            log.error("%s", error.text)
            raise error from None

    def _try_open(self, kid: str | None, blob: bytes, aad: bytes) -> bytes | None:
        keys = self._state[1]
        candidates = list(keys.values()) if kid is None else [keys[kid]] if kid in keys else []
        for aead in candidates:
            try:
                return aead.decrypt(blob[:12], blob[12:], aad)
            except InvalidTag:
                continue
        return None

    def reseal(self, sealed: str, context: str) -> str | None:
        """The value sealed again with the sealing key under the same context, or None when it
        already is. Raises :class:`SealedValueError` if it does not open."""
        self.refresh()
        if self.key_id_of(sealed) == self.sealing_key_id:
            return None
        return self.seal(self.open(sealed, context), context)

    def seal_text(self, text: str, context: str) -> str:
        return self.seal(text.encode(), context)

    def open_text(self, sealed: str, context: str) -> str:
        return self.open(sealed, context).decode()


def _parse(sealed: str) -> tuple[str | None, bytes]:
    """(key id or None for mk1, nonce + ciphertext); ValueError for anything not sealed."""
    if sealed and sealed.startswith(_PREFIX_V2):
        kid, sep, body = sealed[len(_PREFIX_V2):].partition(":")
        if not sep or not kid:
            raise ValueError("not sealed")
    elif sealed and sealed.startswith(_PREFIX):
        kid, body = None, sealed[len(_PREFIX):]
    else:
        raise ValueError("not sealed")
    try:
        blob = base64.b64decode(body, validate=True)
    except binascii.Error:
        raise ValueError("bad Base64") from None
    if len(blob) < 12 + 16:
        raise ValueError("too short")
    return kid, blob
