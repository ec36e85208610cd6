"""The ``pkcs11`` provider: KEKs generated and kept inside an HSM, used through python-pkcs11.

Policy lives here; mechanism is python-pkcs11 calls only.

* **Only allow-listed modules load.** A profile's ``library`` runs inside the process holding the
  master key: it must be on the operator's list (:func:`cloudstack_kms.config.pkcs11_libraries`),
  checked when the profile is validated and again before loading (:func:`library`).
* **One lock per loaded library.** python-pkcs11 initialises modules with ``C_Initialize(NULL)``,
  which turns SoftHSM2's own locking off, and releases the GIL during calls: unserialised
  calls from several threads crash the process. Every call into a library holds its lock;
  an operation takes it once, for checking a session out, using it and checking it back in.
* **Log in once per token, with the right PIN.** Logins are per process and token: the first
  connection logs in and keeps that login session open; further sessions open without the
  PIN. A later profile on the same token shares the login only if its PIN is the one that
  logged in (a second ``C_Login`` answers "already logged in" without looking at the PIN).
  The last connection to leave logs the token out.
* **Bounded sessions.** At most ``max_sessions`` sessions per profile are checked out; waiting
  for one gives up after 5 s with upstream's text.
* **Deadlines.** Every wait of the provider's own — for the library lock, for a pooled
  session — also gives up at the operation's deadline when the retry wrapper runs the call
  inline with one (:mod:`cloudstack_kms.providers.retry`), with the wrapper's timeout error.
  A call already inside the module cannot be cut short: it holds the lock until it returns.
* **Reconnect.** When the device disappears (session or object handles invalid, token not
  present, device errors), the library is re-initialised and the profile reconnects on the
  next call: no server restart. A failed call is retried once after reconnecting. Handles
  carry the library generation they were opened in and are never used (nor closed) after a
  re-initialisation, which hands their numbers out afresh. A token the module does not list
  (added or restored since ``C_Initialize``) triggers one re-initialisation before giving up,
  and an empty object search is only trusted once the token answers ``C_GetTokenInfo``.
* **Authenticated wrapping.** AES-GCM through ``C_Encrypt``/``C_Decrypt`` with the context
  as AAD (SoftHSM 2.6 wraps only with KW/KWP). Where GCM is missing, RFC 5649 key wrap
  (``C_WrapKey`` with ``CKM_AES_KEY_WRAP_PAD``) over the DEK followed by a digest of the
  context. The mechanism is probed once per connection with a throw-away session key.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, TypeVar

from ..config import pkcs11_libraries
from . import retry
from .base import (FORMAT_VERSION, HEADER, MAGIC, MECH_AES_GCM, MECH_AES_KWP, AuthenticationFailed, ConnectionFailed,
                   InvalidProviderParameter, KekNotFound, KekOperationFailed, KeyAlreadyExists, KmsError, KmsProvider,
                   ProfileConfig, ProfileOption, ProviderNotInitialized, TransientError, UnwrapError, WrapContext,
                   check_key_bits, pack, unpack)
from .context import ProviderContext

log = logging.getLogger(__name__)
T = TypeVar("T")

SESSION_ACQUIRE_TIMEOUT_SEC = 5.0
DEFAULT_MAX_SESSIONS = 10
_NONCE = 12
_DIGEST = 16

#: The KEK template: generated in the token, persistent, never readable outside it.
KEK_TEMPLATE_FLAGS = {"SENSITIVE": True, "EXTRACTABLE": False, "TOKEN": True, "PRIVATE": True}

_pkcs11: Any = None
_GCM_HEADER = HEADER.pack(MAGIC, FORMAT_VERSION, MECH_AES_GCM)  # == pack(MECH_AES_GCM, b"")


def _p11():  # imported lazily: python-pkcs11 is an install extra
    global _pkcs11
    if _pkcs11 is None:
        try:
            import pkcs11  # noqa: PLC0415
        except ImportError:
            raise ProviderNotInitialized("python-pkcs11 is not installed (pip install 'cloudstack-kms[hsm]')") from None
        _pkcs11 = pkcs11
    return _pkcs11


def _device_gone(p11: Any) -> tuple[type[Exception], ...]:
    """Errors that mean the token or our sessions are gone, not that the request was bad."""
    e = p11.exceptions
    return (e.DeviceRemoved, e.DeviceError, e.SessionHandleInvalid, e.SessionClosed, e.TokenNotPresent,
            e.TokenNotRecognised, e.ObjectHandleInvalid, e.KeyHandleInvalid, e.GeneralError, e.UserNotLoggedIn)


class _Limit:
    """When a wait of the provider's own gives up: after its own timeout (None: never), or at the
    operation's deadline (:func:`retry.deadline`) if that comes first, which then fails the wait
    with the retry wrapper's timeout error rather than the provider's own."""

    __slots__ = ("at", "by_deadline")

    def __init__(self, own_timeout: float | None) -> None:
        now = time.monotonic()
        self.at = float("inf") if own_timeout is None else now + own_timeout
        self.by_deadline = False
        deadline = retry.deadline()
        if deadline is not None and deadline < self.at:
            self.at, self.by_deadline = deadline, True

    def left(self) -> float:
        return self.at - time.monotonic()

    def acquire(self, lock: Any, own_error: Callable[[], KmsError]) -> None:
        """Take ``lock`` by this limit; raise the error of whichever limit ran out."""
        left = self.left()
        if left == float("inf"):
            lock.acquire()
            return
        if left > 0 and lock.acquire(True, min(left, threading.TIMEOUT_MAX)):
            return
        raise self.error(own_error)

    def error(self, own_error: Callable[[], KmsError]) -> KmsError:
        return retry.timed_out() if self.by_deadline else own_error()


# ------------------------------------------------------------------ libraries
@dataclass
class _Login:
    """This process's login to one token: who logged in with which PIN (as a salted digest)."""

    pin_digest: bytes
    session: Any
    users: set[int] = field(default_factory=set)


class _Library:
    """One loaded PKCS#11 module: its lock, the logins it holds, and a generation bumped at each
    re-initialisation (handles of an older generation must never be used again: after
    ``C_Finalize``/``C_Initialize`` their numbers are handed out afresh)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = threading.RLock()
        self.generation = 0
        self._lib: Any = None
        self._logins: dict[tuple[int, bytes], _Login] = {}
        self._salt = os.urandom(32)

    def get(self) -> Any:
        if self._lib is None:
            try:
                self._lib = _p11().lib(self.path)
            except (RuntimeError, _p11().exceptions.PKCS11Error) as exc:  # unloadable module
                raise ProviderNotInitialized(f"cannot load PKCS#11 library {self.path}") from exc
        return self._lib

    def reinitialize(self) -> None:
        """Forget every session of this module and start it afresh (the token went away)."""
        self.generation += 1
        self._logins.clear()  # C_Finalize ends every session, and with them every login
        if self._lib is not None:
            try:
                self._lib.reinitialize()
            except Exception:  # noqa: BLE001 - a broken module may fail to finalize; reload it then
                log.warning("PKCS#11 reinitialize of %s failed; reloading on next use", self.path)
                self._lib = None

    def login(self, token: Any, pin: str, user: int) -> tuple[int, bytes]:
        """Log ``user`` (a connection) in to ``token``; call with the lock held.

        PKCS#11 logins are per process and token: the first connection logs in, later ones
        share that login, but only when they present the same PIN. (A second ``C_Login``
        answers ``CKR_USER_ALREADY_LOGGED_IN`` before looking at the PIN, so without this check
        a profile with a wrong PIN would use the token of another profile.)
        """
        key = (token.slot.slot_id, token.serial)
        digest = hmac.new(self._salt, pin.encode(), hashlib.sha256).digest()
        entry = self._logins.get(key)
        if entry is None:
            try:
                session = token.open(rw=True, user_pin=pin)
            except _p11().exceptions.UserAlreadyLoggedIn:
                raise AuthenticationFailed("HSM token is already logged in by other code of this process; "
                                           "the PIN cannot be verified") from None
            entry = self._logins[key] = _Login(digest, session)
        elif not hmac.compare_digest(entry.pin_digest, digest):
            raise AuthenticationFailed("Incorrect PIN for HSM authentication")
        entry.users.add(user)
        return key

    def logout(self, key: tuple[int, bytes], user: int) -> None:
        """``user`` no longer needs the login; the last one out logs the token out."""
        entry = self._logins.get(key)
        if entry is None:
            return
        entry.users.discard(user)
        if not entry.users:
            del self._logins[key]
            try:
                entry.session.close()
            except Exception:  # noqa: BLE001 - closing a dead session is best effort
                pass


_libraries: dict[str, _Library] = {}
_libraries_lock = threading.Lock()


def allowed_library(path: str) -> str | None:
    """The allow-list entry (:func:`cloudstack_kms.config.pkcs11_libraries`) naming the same file
    as ``path``, or None. Real paths are compared, so a symlink or ``..`` cannot smuggle another
    file in; the entry as the operator wrote it is what gets loaded, so swapping a symlink the
    caller controls after this check changes nothing."""
    real = os.path.realpath(path)
    return next((entry for entry in pkcs11_libraries() if os.path.realpath(entry) == real), None)


def not_allowed_text(path: str) -> str:
    return (f"PKCS#11 library {path} is not on this server's allow-list of PKCS#11 modules "
            "(set by the operator with KMS_PKCS11_LIBRARIES or serve --pkcs11-library)")


def library(path: str) -> _Library:
    """The one :class:`_Library` of an allowed module, whatever spelling of its path is given.

    Checked here as well as when a profile is created (defence in depth: the allow-list may
    have shrunk since, or a row been edited in the database). One object per file also keeps
    one lock per module when two profiles spell its path differently.
    """
    allowed = allowed_library(path) if path else None
    if allowed is None:
        raise ProviderNotInitialized(not_allowed_text(path))
    path = allowed
    with _libraries_lock:
        lib = _libraries.get(path)
        if lib is None:
            lib = _libraries[path] = _Library(path)
        return lib


# ------------------------------------------------------------------ connections
@dataclass
class _Session:
    handle: Any
    generation: int  # of the library when opened
    keys: dict[str, Any] = field(default_factory=dict)  # label -> key object of this session


class _Connection:
    """A profile's logged-in token: a bounded pool of sessions and the probed mechanism.

    Every method is called with the library lock held.
    """

    def __init__(self, profile: ProfileConfig, lib: _Library) -> None:
        self.profile = profile
        self.revision = profile.revision
        self.lib = lib
        self.generation = -1
        self.max_sessions = int(profile.details.get("max_sessions") or DEFAULT_MAX_SESSIONS)
        self.in_use = 0
        self.waiting = 0
        self.available = threading.Condition(lib.lock)
        self.token: Any = None
        self.idle: list[_Session] = []
        self.login_key: tuple[int, bytes] | None = None
        self.mechanism: int | None = None

    @property
    def stale(self) -> bool:
        return self.generation != self.lib.generation

    def _find_token(self, lib: Any) -> Any:
        details = self.profile.details
        if details.get("token_label"):
            try:
                return lib.get_token(token_label=details["token_label"])
            except _p11().exceptions.NoSuchToken:
                return None
        slots = lib.get_slots(token_present=True)
        if details.get("slot") not in (None, ""):
            match = [s for s in slots if s.slot_id == int(details["slot"])]
            return match[0].get_token() if match else None
        index = int(details["slot_list_index"])
        return slots[index].get_token() if index < len(slots) else None

    def connect(self) -> None:
        """Find the token, log in, open a first session and probe the mechanism."""
        details = self.profile.details
        # python-pkcs11 logs in with a str PIN. It stays in the profile's details, as long as this
        # connection may have to log in again (after a device reset); no other copy is kept (the
        # login cache holds a salted digest).
        pin = details.get("pin")
        if not pin:
            raise InvalidProviderParameter("pin is required")
        self.token = self._find_token(self.lib.get())
        if self.token is None:
            # Modules list their tokens as of C_Initialize (SoftHSM2 does): a token added or
            # restored since then shows up only after re-initialising the library.
            self.lib.reinitialize()
            self.token = self._find_token(self.lib.get())
        if self.token is None:
            if details.get("token_label"):
                raise ConnectionFailed(f"token not found for HSM profile {self.profile.name}")
            if details.get("slot") not in (None, ""):
                raise InvalidProviderParameter(f"Invalid slot ID: {details['slot']}")
            raise InvalidProviderParameter(f"Invalid slot ID: slot list index {details['slot_list_index']}")
        self.generation = self.lib.generation
        try:
            self.login_key = self.lib.login(self.token, pin, id(self))
            session = self.open_session()
            self.mechanism = self._probe(session.handle)
            self.idle.append(session)
        except BaseException:
            self.close()
            raise

    def _probe(self, handle: Any) -> int:
        """Which authenticated mechanism this token really performs (flags cannot be trusted)."""
        forced = (self.profile.details.get("wrap_mechanism") or "").lower()
        if forced == "kwp":
            return MECH_AES_KWP
        if forced == "gcm":
            return MECH_AES_GCM
        p11 = _p11()
        key = handle.generate_key(p11.KeyType.AES, 256, store=False)
        try:
            try:
                nonce = os.urandom(_NONCE)
                params = p11.GCMParams(nonce, b"probe", 128)
                sealed = key.encrypt(b"\x00" * 32, mechanism=p11.Mechanism.AES_GCM, mechanism_param=params)
                if key.decrypt(sealed, mechanism=p11.Mechanism.AES_GCM, mechanism_param=params) == b"\x00" * 32:
                    return MECH_AES_GCM
            except p11.exceptions.PKCS11Error:
                pass
            return MECH_AES_KWP
        finally:
            key.destroy()

    def check_token(self) -> None:
        """Raise the module's error if the token is not usable right now.

        A token that vanished (SoftHSM2: its directory is gone) answers object searches with
        nothing rather than an error; an empty search result is only trusted after this.
        """
        self.token.slot.get_token()

    def open_session(self) -> _Session:
        return _Session(self.token.open(rw=True), self.generation)

    def checkout(self, limit: _Limit | None = None) -> _Session:
        """A session of the current generation; waits (lock released) while all are in use, up to
        ``limit`` (default: the session timeout, or the operation's deadline if sooner)."""
        while True:
            if self.generation != self.lib.generation:
                self.close()
                self.connect()
            if self.in_use < self.max_sessions:
                break
            if limit is None:
                limit = _Limit(SESSION_ACQUIRE_TIMEOUT_SEC)
            remaining = limit.left()
            if remaining <= 0:
                raise limit.error(self.timeout)
            self.waiting += 1
            try:
                self.available.wait(remaining)
            finally:
                self.waiting -= 1
        self.in_use += 1
        idle = self.idle
        while idle:
            session = idle.pop()
            if session.generation == self.generation:
                return session
        try:
            return self.open_session()
        except BaseException:
            self.in_use -= 1
            raise

    def checkin(self, session: _Session) -> None:
        self.in_use -= 1
        if session.generation == self.generation == self.lib.generation:
            self.idle.append(session)
        elif session.generation == self.lib.generation:
            # The connection was closed (invalidated) while this session was out: close it too.
            try:
                session.handle.close()
            except Exception:  # noqa: BLE001 - best effort
                pass
        if self.waiting:
            self.available.notify()

    def timeout(self) -> TransientError:
        return TransientError(
            f"Timed out waiting for an available HSM session for profile {self.profile.id} "
            f"(max={self.max_sessions}, timeout={int(SESSION_ACQUIRE_TIMEOUT_SEC * 1000)}ms)")

    def close(self) -> None:
        """Close the idle sessions and leave the login.

        Handles of an older library generation are only forgotten, never closed: their numbers
        may belong to sessions opened since the re-initialisation.
        """
        if self.generation == self.lib.generation:
            for session in self.idle:
                try:
                    session.handle.close()
                except Exception:  # noqa: BLE001 - closing a dead session is best effort
                    pass
            if self.login_key is not None:
                self.lib.logout(self.login_key, id(self))
        self.idle = []
        self.login_key = None
        self.generation = -1


def _is_our_kek(key: Any, key_bits: int) -> bool:
    """Whether an existing key is one :meth:`Pkcs11Provider.create_kek` would make: AES of the
    size asked, on the token, generated there (``LOCAL``) and never readable outside it
    (``ALWAYS_SENSITIVE``, ``NEVER_EXTRACTABLE``: a key imported with a known value fails these),
    and able to encrypt, decrypt, wrap and unwrap. Only such a key may be adopted."""
    p11 = _p11()
    a = p11.Attribute
    wanted = {a.KEY_TYPE: p11.KeyType.AES, a.VALUE_LEN: key_bits // 8, a.TOKEN: True, a.PRIVATE: True,
              a.SENSITIVE: True, a.EXTRACTABLE: False, a.ALWAYS_SENSITIVE: True, a.NEVER_EXTRACTABLE: True,
              a.LOCAL: True, a.ENCRYPT: True, a.DECRYPT: True, a.WRAP: True, a.UNWRAP: True}
    try:
        return all(key[name] == value for name, value in wanted.items())
    except (p11.exceptions.AttributeTypeInvalid, p11.exceptions.AttributeSensitive):
        return False


# ------------------------------------------------------------------ the provider
class Pkcs11Provider(KmsProvider):
    name = "pkcs11"
    honours_deadline = True  # see "Deadlines" in the module docstring
    options = (
        ProfileOption("library", "Path of the vendor's PKCS#11 module", required=True),
        ProfileOption("slot", "Numeric slot id"),
        ProfileOption("slot_list_index", "Index in the list of slots with a token"),
        ProfileOption("token_label", "Token label (preferred when several are given)"),
        ProfileOption("pin", "User PIN", required=True, sensitive=True),
        ProfileOption("max_sessions", "Maximum open sessions for this profile (default 10)"),
        ProfileOption("wrap_mechanism", "Force 'gcm' or 'kwp' instead of probing the token"),
    )

    def __init__(self, context: ProviderContext | None = None) -> None:
        self._connections: dict[int, _Connection] = {}
        self._lock = threading.Lock()

    # -------------------------------------------------------------- validation
    def validate_details(self, details: dict[str, str]) -> None:
        if not details.get("library"):
            raise InvalidProviderParameter("library is required for PKCS#11 HSM profile")
        if not any(details.get(k) not in (None, "") for k in ("slot", "slot_list_index", "token_label")):
            raise InvalidProviderParameter(
                "One of 'slot', 'slot_list_index', or 'token_label' is required for PKCS#11 HSM profile")
        if details.get("slot") not in (None, ""):
            try:
                int(details["slot"])
            except ValueError:
                raise InvalidProviderParameter(f"slot must be a valid integer: {details['slot']}") from None
        if details.get("slot_list_index") not in (None, ""):
            try:
                index = int(details["slot_list_index"])
            except ValueError:
                raise InvalidProviderParameter(
                    f"slot_list_index must be a valid integer: {details['slot_list_index']}") from None
            if index < 0:
                raise InvalidProviderParameter("slot_list_index must be a non-negative integer")
        if details.get("max_sessions") not in (None, ""):
            try:
                sessions = int(details["max_sessions"])
            except ValueError:
                raise InvalidProviderParameter(
                    f"max_sessions must be a valid integer: {details['max_sessions']}") from None
            if sessions <= 0:
                raise InvalidProviderParameter("max_sessions must be greater than 0")
        mechanism = (details.get("wrap_mechanism") or "").lower()
        if mechanism not in ("", "gcm", "kwp"):
            raise InvalidProviderParameter("wrap_mechanism must be gcm or kwp")
        # Last, so the other messages stay as upstream's. A path check only: nothing is loaded.
        if allowed_library(details["library"]) is None:
            raise InvalidProviderParameter(not_allowed_text(details["library"]))

    # -------------------------------------------------------------- plumbing
    def _connection(self, profile: ProfileConfig) -> _Connection:
        # Closing a stale connection needs the library lock, which a hung call may hold: both waits
        # end at the operation's deadline, if there is one (no timeout of their own, as before).
        limit = _Limit(None)
        limit.acquire(self._lock, retry.timed_out)
        try:
            conn = self._connections.get(profile.id)
            if conn is None or conn.revision != profile.revision:
                if conn is not None:
                    limit.acquire(conn.lib.lock, retry.timed_out)
                    try:
                        conn.close()
                    finally:
                        conn.lib.lock.release()
                conn = _Connection(profile, library(profile.details.get("library", "")))
                self._connections[profile.id] = conn
            return conn
        finally:
            self._lock.release()

    @contextmanager
    def _session(self, conn: _Connection) -> Iterator[_Session]:
        """Hold a session outside the library lock (tests and multi-call work); ``_call`` does not use it."""
        limit = _Limit(SESSION_ACQUIRE_TIMEOUT_SEC)  # lock and session together
        limit.acquire(conn.lib.lock, conn.timeout)
        try:
            session = conn.checkout(limit)
        finally:
            conn.lib.lock.release()
        try:
            yield session
        finally:
            with conn.lib.lock:
                conn.checkin(session)

    def _call(self, profile: ProfileConfig, operation: Callable[[_Connection, _Session], T]) -> T:
        """Run ``operation`` on a pooled session, all under the library lock (one acquisition:
        no other thread can re-initialise the library between checking a session out and using
        it); reconnect and retry once if the token went away."""
        p11 = _p11()
        conn = self._connections.get(profile.id)  # a dict read is atomic; _connection() locks
        if conn is None or conn.revision != profile.revision:
            conn = self._connection(profile)
        lib = conn.lib
        lock = lib.lock
        for attempt in (1, 2):
            if not lock.acquire(False):  # free (the usual case): no clock reads
                _Limit(SESSION_ACQUIRE_TIMEOUT_SEC).acquire(lock, conn.timeout)
            generation = lib.generation
            try:
                if conn.generation == generation and conn.in_use < conn.max_sessions and conn.idle:
                    session = conn.idle.pop()  # fast path: idle sessions of a live connection are current
                    conn.in_use += 1
                else:
                    session = conn.checkout()
                try:
                    return operation(conn, session)
                finally:
                    conn.checkin(session)
            except KmsError:
                raise
            except p11.exceptions.PinIncorrect:
                conn.close()  # never keep a half-open connection
                raise AuthenticationFailed("Incorrect PIN for HSM authentication") from None
            except (p11.exceptions.PinInvalid, p11.exceptions.PinLenRange, p11.exceptions.PinLocked,
                    p11.exceptions.PinExpired) as exc:
                conn.close()
                raise AuthenticationFailed(f"HSM authentication failed: {type(exc).__name__}") from None
            except p11.exceptions.SlotIDInvalid:
                raise InvalidProviderParameter(f"Invalid slot ID: {profile.details.get('slot')}") from None
            except _device_gone(p11) as exc:
                log.warning("HSM profile %s: %s; re-initialising the PKCS#11 library", profile.name,
                            type(exc).__name__)
                if lib.generation == generation:  # nobody has re-initialised since this attempt began
                    conn.close()
                    lib.reinitialize()
                if attempt == 2:
                    raise ConnectionFailed(
                        f"HSM profile {profile.name} is unreachable ({type(exc).__name__})") from None
            except p11.exceptions.PKCS11Error as exc:
                raise KekOperationFailed(f"{type(exc).__name__}") from None
            finally:
                lock.release()
        raise ConnectionFailed(f"HSM profile {profile.name} is unreachable")  # pragma: no cover

    @staticmethod
    def _find_kek(conn: _Connection, session: _Session, label: str) -> Any:
        key = session.keys.get(label)
        if key is None:
            p11 = _p11()
            try:
                key = session.handle.get_key(object_class=p11.ObjectClass.SECRET_KEY, label=label)
            except p11.exceptions.NoSuchKey:
                conn.check_token()
                raise KekNotFound(label) from None
            except p11.exceptions.MultipleObjectsReturned:
                raise KekOperationFailed(f"more than one key labelled {label} in the HSM") from None
            session.keys[label] = key
        return key

    # -------------------------------------------------------------- operations
    def create_kek(self, profile: ProfileConfig, label: str, key_bits: int, adopt: bool = False) -> str:
        """``adopt``: the caller owns ``label`` (it names a key made by this very call), so a KEK
        already under it was made by an earlier attempt whose call timed out and kept running in
        the background; it is used, instead of failing with :class:`KeyAlreadyExists`, if it is
        exactly what this method makes."""
        check_key_bits(key_bits)
        p11 = _p11()
        attr = p11.Attribute

        def op(conn: _Connection, session: _Session) -> str:
            existing = list(session.handle.get_objects({attr.CLASS: p11.ObjectClass.SECRET_KEY, attr.LABEL: label}))
            if existing:
                if adopt and len(existing) == 1 and _is_our_kek(existing[0], key_bits):
                    log.info("KEK %s already exists (made by an earlier attempt): using it", label)
                    return label
                raise KeyAlreadyExists(f"Key with label '{label}' already exists in HSM")
            template = {getattr(attr, name): value for name, value in KEK_TEMPLATE_FLAGS.items()}
            flags = p11.MechanismFlag
            session.handle.generate_key(
                p11.KeyType.AES, key_bits, label=label, id=hashlib.sha256(label.encode()).digest()[:16],
                store=True, capabilities=flags.ENCRYPT | flags.DECRYPT | flags.WRAP | flags.UNWRAP,
                template=template)
            return label

        return self._call(profile, op)

    def delete_kek(self, profile: ProfileConfig, label: str) -> None:
        p11 = _p11()

        def op(conn: _Connection, session: _Session) -> None:
            found = list(session.handle.get_objects({p11.Attribute.CLASS: p11.ObjectClass.SECRET_KEY,
                                                     p11.Attribute.LABEL: label}))
            if not found:
                conn.check_token()  # "nothing to delete" must not be a vanished token
            for obj in found:
                obj.destroy()
            for other in [*conn.idle, session]:
                other.keys.pop(label, None)

        self._call(profile, op)

    def kek_available(self, profile: ProfileConfig, label: str) -> bool:
        def op(conn: _Connection, session: _Session) -> bool:
            try:
                self._find_kek(conn, session, label)
                return True
            except KekNotFound:
                return False

        return self._call(profile, op)

    def kek_attributes(self, profile: ProfileConfig, label: str) -> dict[str, Any]:
        """CKA_SENSITIVE/EXTRACTABLE/TOKEN/NEVER_EXTRACTABLE of a KEK, read back from the token."""
        p11 = _p11()

        def op(conn: _Connection, session: _Session) -> dict[str, Any]:
            key = self._find_kek(conn, session, label)
            return {name: key[getattr(p11.Attribute, name)]
                    for name in ("SENSITIVE", "EXTRACTABLE", "TOKEN", "NEVER_EXTRACTABLE", "VALUE_LEN")}

        return self._call(profile, op)

    def wrap(self, profile: ProfileConfig, label: str, plaintext: bytes, context: WrapContext) -> bytes:
        p11 = _p11()
        aad = context.aad()
        # python-pkcs11 accepts only bytes (and copies them again into buffers it frees without
        # zeroing): this immutable copy of a bytearray DEK cannot be avoided on this path.
        plaintext = bytes(plaintext)

        def op(conn: _Connection, session: _Session) -> bytes:
            kek = session.keys.get(label)
            if kek is None:
                kek = self._find_kek(conn, session, label)
            if conn.mechanism == MECH_AES_GCM:
                nonce = os.urandom(_NONCE)
                return b"".join((_GCM_HEADER, nonce, kek.encrypt(plaintext, mechanism=p11.Mechanism.AES_GCM,
                                                                   mechanism_param=p11.GCMParams(nonce, aad, 128))))
            value = plaintext + hashlib.sha256(aad).digest()[:_DIGEST]
            obj = session.handle.create_object({
                p11.Attribute.CLASS: p11.ObjectClass.SECRET_KEY, p11.Attribute.KEY_TYPE: p11.KeyType.GENERIC_SECRET,
                p11.Attribute.VALUE: value, p11.Attribute.TOKEN: False, p11.Attribute.EXTRACTABLE: True,
                p11.Attribute.SENSITIVE: False})
            try:
                return pack(MECH_AES_KWP, kek.wrap_key(obj, mechanism=p11.Mechanism.AES_KEY_WRAP_PAD))
            finally:
                obj.destroy()

        return self._call(profile, op)

    def unwrap(self, profile: ProfileConfig, label: str, blob: bytes, context: WrapContext) -> bytearray:
        p11 = _p11()
        mechanism, payload = unpack(blob)
        aad = context.aad()

        def op(conn: _Connection, session: _Session) -> bytearray:
            kek = session.keys.get(label)
            if kek is None:
                kek = self._find_kek(conn, session, label)
            try:
                if mechanism == MECH_AES_GCM:
                    if len(payload) < _NONCE + 16:
                        raise UnwrapError()
                    return bytearray(kek.decrypt(payload[_NONCE:], mechanism=p11.Mechanism.AES_GCM,
                                                 mechanism_param=p11.GCMParams(payload[:_NONCE], aad, 128)))
                if mechanism == MECH_AES_KWP:
                    obj = kek.unwrap_key(p11.ObjectClass.SECRET_KEY, p11.KeyType.GENERIC_SECRET, payload,
                                         mechanism=p11.Mechanism.AES_KEY_WRAP_PAD, store=False,
                                         template={p11.Attribute.EXTRACTABLE: True, p11.Attribute.SENSITIVE: False})
                    try:
                        value = bytearray(obj[p11.Attribute.VALUE])
                    finally:
                        obj.destroy()
                    digest = bytes(value[-_DIGEST:])
                    if len(value) <= _DIGEST or not hmac.compare_digest(digest, hashlib.sha256(aad).digest()[:_DIGEST]):
                        value[:] = b"\x00" * len(value)
                        raise UnwrapError()
                    plain = value[:-_DIGEST]
                    value[:] = b"\x00" * len(value)
                    return plain
                raise UnwrapError("wrapped key uses an unknown mechanism")
            except (p11.exceptions.EncryptedDataInvalid, p11.exceptions.EncryptedDataLenRange,
                    p11.exceptions.WrappedKeyInvalid, p11.exceptions.WrappedKeyLenRange,
                    p11.exceptions.GeneralError, p11.exceptions.DataInvalid):
                # SoftHSM 2.6 reports a GCM tag mismatch as CKR_GENERAL_ERROR. Tell a bad blob from
                # a dead token by probing the token: if the KEK still answers, the blob is bad.
                if self._alive(session, kek):
                    raise UnwrapError() from None
                raise

        return self._call(profile, op)

    @staticmethod
    def _alive(session: _Session, kek: Any) -> bool:
        p11 = _p11()
        try:
            kek[p11.Attribute.LABEL]
            session.handle.generate_random(8)
            return True
        except p11.exceptions.PKCS11Error:
            return False

    def health_check(self, profile: ProfileConfig) -> bool:
        try:
            return self._call(profile, lambda conn, session: bool(session.handle.generate_random(8)))
        except KmsError:
            return False

    def invalidate(self, profile_id: int) -> None:
        with self._lock:
            conn = self._connections.pop(profile_id, None)
        if conn is not None:
            with conn.lib.lock:
                conn.close()

    def close(self) -> None:
        with self._lock:
            connections = list(self._connections.values())
            self._connections.clear()
        for conn in connections:
            with conn.lib.lock:
                conn.close()
