"""The server's own master key, used to encrypt secrets kept in the database.

Secrets at rest (user secret keys, sensitive HSM profile details, legacy passphrases,
database-provider KEKs) are sealed with AES-256-GCM. The associated data names the row
and column a value belongs to, so a ciphertext copied to another row fails to open.
"""
from __future__ import annotations

import base64
import binascii
import logging
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import CloudRuntimeError  # a leaf module (no imports): no cycle

log = logging.getLogger(__name__)
_FORMAT = b"v1"
_PREFIX = "mk1:"


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
    """Seals and opens small secrets. Never logs or reprs the key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise MasterKeyError("master key must be 32 bytes")
        self._aead = AESGCM(key)

    def __repr__(self) -> str:  # never show key material
        return "MasterKey(<hidden>)"

    @classmethod
    def load(cls, path: Path) -> "MasterKey":
        try:
            raw = Path(path).read_bytes().strip()
        except OSError as exc:
            raise MasterKeyError(f"cannot read master key file {path}: {exc.strerror}") from None
        try:
            return cls(base64.b64decode(raw, validate=True))
        except (ValueError, MasterKeyError):
            raise MasterKeyError(f"master key file {path} is not a base64 32-byte key") from None

    @classmethod
    def create(cls, path: Path) -> "MasterKey":
        """Write a new random key with mode 0600; refuses to overwrite an existing file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        key = os.urandom(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(base64.b64encode(key) + b"\n")
        return cls(key)

    @classmethod
    def load_or_create(cls, path: Path) -> "MasterKey":
        return cls.load(path) if Path(path).exists() else cls.create(path)

    def seal(self, plaintext: bytes, context: str) -> str:
        nonce = os.urandom(12)
        ct = self._aead.encrypt(nonce, plaintext, _FORMAT + b"|" + context.encode())
        return _PREFIX + base64.b64encode(nonce + ct).decode()

    def open(self, sealed: str, context: str) -> bytes:
        """The plaintext of a value made by :meth:`seal` with the same context.

        Anything else (another master key, another row's value, a damaged or missing value)
        raises :class:`SealedValueError` and logs which value it was.
        """
        try:
            if not sealed or not sealed.startswith(_PREFIX):
                raise ValueError("not sealed")
            blob = base64.b64decode(sealed[len(_PREFIX):], validate=True)
            return self._aead.decrypt(blob[:12], blob[12:], _FORMAT + b"|" + context.encode())
        except (InvalidTag, ValueError, binascii.Error):  # short nonce, bad Base64, wrong key, wrong row
            error = SealedValueError(context)
            log.error("%s", error.text)
            raise error from None

    def seal_text(self, text: str, context: str) -> str:
        return self.seal(text.encode(), context)

    def open_text(self, sealed: str, context: str) -> str:
        return self.open(sealed, context).decode()
