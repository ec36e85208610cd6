"""The one interface every KMS provider implements, and the values that cross it.

A provider keeps KEKs (key encryption keys) somewhere they never leave in plain form and
uses them to wrap and unwrap DEKs (data encryption keys). The KMS service calls providers
only through :mod:`cloudstack_kms.providers.retry`, which adds retries and timeouts.

Rules for every provider
------------------------
* **Never return a wrong key.** Every blob is authenticated (AES-GCM, or RFC 5649 key wrap
  carrying a digest of the context) and bound to its context, the :class:`WrapContext`
  (wrapped-key uuid, KMS key uuid, purpose). A blob moved to another row or key fails with
  :class:`UnwrapError`, one class and one message whatever the cause, as
  ``cryptography.exceptions.InvalidTag`` does.
* **Blob format.** ``MAGIC (4 bytes) | format version (1) | mechanism id (1) | payload``;
  the service stores it verbatim. The header lets a later release add mechanisms without
  guessing.
* **Secrets stay in memory.** Plaintext DEKs are returned as ``bytearray`` so callers can
  zero them (:func:`zero`); no provider logs, reprs or raises with key material or PINs.
* **Providers do not touch the server's tables**, except storage that belongs to the
  provider itself (the database provider's ``kms_database_kek_objects``).
* **Errors** are :class:`KmsError` subclasses; ``retryable`` tells the retry wrapper whether
  another attempt could help (a lost connection) or not (a wrong PIN, a missing KEK).
"""
from __future__ import annotations

import abc
import os
import struct
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

MAGIC = b"CKMS"
FORMAT_VERSION = 1
HEADER = struct.Struct(">4sBB")
MECH_AES_GCM = 1
MECH_AES_KWP = 2
VALID_KEY_BITS = (128, 192, 256)


# ------------------------------------------------------------------ errors
class KmsError(Exception):
    """Base of provider errors. ``prefix`` follows upstream's KMSException messages."""

    retryable: ClassVar[bool] = False
    prefix: ClassVar[str] = ""

    def __init__(self, message: str) -> None:
        super().__init__(self.prefix + message)
        self.message = self.prefix + message


class ProviderNotInitialized(KmsError):
    prefix = "KMS provider not initialized: "


class KekNotFound(KmsError):
    prefix = "KEK not found: "


class KeyAlreadyExists(KmsError):
    prefix = "Key already exists: "


class InvalidProviderParameter(KmsError):
    prefix = "Invalid parameter: "


class AuthenticationFailed(KmsError):
    """Wrong PIN or credentials: retrying would only lock the token."""


class ConnectionFailed(KmsError):
    retryable = True
    prefix = "Connection failed: "


class KekOperationFailed(KmsError):
    retryable = True
    prefix = "KEK operation failed: "


class TransientError(KmsError):
    retryable = True
    prefix = "Transient error: "


class UnwrapError(KmsError):
    """The blob does not open with this KEK and context. Never retried: it cannot get better."""

    prefix = "Wrap/unwrap operation failed: "

    def __init__(self, message: str = "wrapped key failed authentication (wrong key, context or corrupted blob)"):
        super().__init__(message)


# ------------------------------------------------------------------ values
@dataclass(frozen=True)
class WrapContext:
    """What a blob is bound to. Changing any field makes unwrap fail."""

    wrapped_key_uuid: str
    kms_key_uuid: str
    purpose: str = "VOLUME_ENCRYPTION"

    def aad(self) -> bytes:
        return f"cloudstack-kms/v{FORMAT_VERSION}|{self.purpose}|{self.kms_key_uuid}|{self.wrapped_key_uuid}".encode()


@dataclass(frozen=True)
class ProfileConfig:
    """An HSM profile as a provider sees it: details already opened (PINs in plain text).

    ``repr`` hides every detail value, so a logged profile cannot leak a PIN.
    """

    id: int
    uuid: str
    name: str
    protocol: str
    details: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    #: Bumped when the profile changes, so cached connections can tell they are stale.
    revision: str = ""

    def __repr__(self) -> str:
        return f"ProfileConfig(id={self.id}, name={self.name!r}, protocol={self.protocol!r})"


@dataclass(frozen=True)
class ProfileOption:
    """One detail a provider understands: drives validation, encryption at rest and masking."""

    name: str
    description: str
    required: bool = False
    sensitive: bool = False


def is_sensitive_detail(name: str) -> bool:
    """Upstream's rule: ``pin``, ``password``, ``private_key``, or any name containing ``secret``."""
    lowered = name.lower()
    return lowered in ("pin", "password", "private_key") or "secret" in lowered


def pack(mechanism: int, payload: bytes) -> bytes:
    return HEADER.pack(MAGIC, FORMAT_VERSION, mechanism) + payload


def unpack(blob: bytes) -> tuple[int, bytes]:
    if len(blob) < HEADER.size:
        raise UnwrapError("wrapped key is too short")
    magic, version, mechanism = HEADER.unpack_from(blob)
    if magic != MAGIC or version != FORMAT_VERSION:
        raise UnwrapError("wrapped key has an unknown format")
    return mechanism, bytes(blob[HEADER.size:])


def random_buffer(size: int) -> bytearray:
    """Random bytes read straight into a buffer the caller can zero (``os.urandom`` would leave
    an immutable copy of the key in memory until it is reused)."""
    buffer = bytearray(size)
    try:
        source = open("/dev/urandom", "rb", buffering=0)  # noqa: SIM115
    except OSError:  # not a Unix system
        return bytearray(os.urandom(size))
    with source:
        view = memoryview(buffer)
        while view:
            view = view[source.readinto(view):]
    return buffer


def zero(buffer: bytearray | None) -> None:
    """Overwrite a plaintext buffer once it is no longer needed."""
    if buffer is not None:
        buffer[:] = b"\x00" * len(buffer)


def check_key_bits(bits: int) -> None:
    if bits not in VALID_KEY_BITS:
        raise InvalidProviderParameter("Key size must be 128, 192, or 256 bits")


# ------------------------------------------------------------------ the interface
class KmsProvider(abc.ABC):
    """A KEK backend. One instance per process per protocol; thread-safe.

    Every method takes the :class:`ProfileConfig` of the HSM profile it works in, because one
    provider serves many profiles (several tokens, say). ``label`` names a KEK inside the
    backend; the service builds it (``volume-kek-<domain>-<account>-<uuid>-v<n>``).
    """

    #: The ``protocol`` of HSM profiles served by this provider (matched case-insensitively).
    name: ClassVar[str] = ""
    #: The profile details this provider understands.
    options: ClassVar[tuple[ProfileOption, ...]] = ()
    #: True when calls cannot hang (no device or network): the retry wrapper then runs them in
    #: the caller's thread, without the hand-off a timeout needs.
    runs_inline: ClassVar[bool] = False
    #: True when every wait of the provider's own (a lock, a pooled session) gives up at the
    #: deadline the retry wrapper publishes (:func:`cloudstack_kms.providers.retry.remaining`),
    #: raising :func:`~cloudstack_kms.providers.retry.timed_out`. The service then runs its data
    #: operations in the caller's thread with that deadline instead of handing each attempt to
    #: a worker thread. False by default: a third-party provider cannot be assumed to do so.
    honours_deadline: ClassVar[bool] = False

    def validate_details(self, details: dict[str, str]) -> None:
        """Check a new profile's details before they are stored.

        Raises :class:`InvalidProviderParameter` with the text an operator should read.
        Must not connect anywhere: profiles are validated inside an API request.
        """

    @abc.abstractmethod
    def create_kek(self, profile: ProfileConfig, label: str, key_bits: int, adopt: bool = False) -> str:
        """Create a KEK of ``key_bits`` under ``label``; return the label.

        The KEK must be persistent, and where the backend allows, sensitive and not
        extractable. An existing KEK with the same label is :class:`KeyAlreadyExists`, unless
        ``adopt``: then a KEK of exactly the kind this call would make is taken as made by an
        earlier attempt of the same creation (one that timed out but finished in the backend),
        which keeps a retried creation idempotent. Callers pass ``adopt`` only for labels that
        are new to them (the label holds the new key's uuid).
        """

    @abc.abstractmethod
    def delete_kek(self, profile: ProfileConfig, label: str) -> None:
        """Destroy the KEK. Every DEK it wraps becomes unrecoverable; callers check first.

        Deleting a KEK that is already gone is not an error (deletion is retried after crashes).
        """

    @abc.abstractmethod
    def kek_available(self, profile: ProfileConfig, label: str) -> bool:
        """True when the KEK exists and can be used now."""

    @abc.abstractmethod
    def wrap(self, profile: ProfileConfig, label: str, plaintext: bytes | bytearray, context: WrapContext) -> bytes:
        """Encrypt ``plaintext`` with the KEK, authenticated and bound to ``context``; return the blob.

        Callers pass their ``bytearray`` as is: a provider copies it to ``bytes`` only when its
        library insists, since an immutable copy cannot be zeroed.
        """

    @abc.abstractmethod
    def unwrap(self, profile: ProfileConfig, label: str, blob: bytes, context: WrapContext) -> bytearray:
        """Open a blob made by :meth:`wrap` with the same KEK and context.

        Anything else — another KEK, another context, a changed byte — raises
        :class:`UnwrapError`. The caller zeroes the returned buffer.
        """

    def generate_and_wrap(self, profile: ProfileConfig, label: str, key_bits: int,
                          context: WrapContext) -> tuple[bytearray, bytes]:
        """Make a random DEK of ``key_bits`` and wrap it; returns (plaintext, blob).

        The default draws from the OS; an HSM provider may generate inside the token instead.
        """
        check_key_bits(key_bits)
        dek = random_buffer(key_bits // 8)
        try:
            return dek, self.wrap(profile, label, dek, context)
        except BaseException:
            zero(dek)
            raise

    def rewrap(self, profile: ProfileConfig, label: str, blob: bytes, context: WrapContext,
               new_profile: ProfileConfig, new_label: str, new_context: WrapContext) -> bytes:
        """Re-encrypt a blob under another KEK of this provider; the plaintext never leaves memory."""
        plain = self.unwrap(profile, label, blob, context)
        try:
            return self.wrap(new_profile, new_label, plain, new_context)
        finally:
            zero(plain)

    @abc.abstractmethod
    def health_check(self, profile: ProfileConfig) -> bool:
        """True when the backend of ``profile`` answers (a login works, a probe succeeds)."""

    def invalidate(self, profile_id: int) -> None:
        """Drop cached sessions, handles and configuration of a profile (after update/delete)."""

    def close(self) -> None:
        """Release every resource at process exit."""


ProviderFactory = Callable[[Any], KmsProvider]
