"""The master key file as a keyring: the keys that open stored secrets, and the one that seals.

Format: one key per line, Base64 of 32 random bytes. The first line is the *sealing* key (new
values are sealed with it); every line opens. A line may carry one flag after the key:

* ``next`` — a key written by ``master-key rotate --prepare``: it opens values but does not
  seal yet. It lets every host learn a new key before any value is sealed with it; ``rotate``
  then promotes it to the first line.

A one-line file without flags — the format of every earlier version — is a valid keyring.
Blank lines and lines starting with ``#`` are ignored.

Each key has an id: the first 8 hex digits of SHA-256 over a fixed label and the key. The id
is written next to every sealed value (``mk2:<id>:...``) so opening picks the key at once and
a rotation can count what each key still protects. It says nothing useful about the key: 32
bits of a one-way digest of a 256-bit random key leave a search space of 2**224 keys, and the
label keeps it apart from any other digest of the same key. Two keys of one keyring sharing an
id (odds 2**-32) is refused when the key is generated.

Files are written atomically (temporary file of mode 0600, fsync, rename, fsync of the
directory), so a server re-reading the file sees the old keyring or the new one, never half.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

KEY_BYTES = 32
_ID_LABEL = b"cloudstack-kms master key id\x00"
FLAG_NEXT = "next"
_FLAGS = (FLAG_NEXT,)


class KeyringError(Exception):
    """The keyring file is missing, unreadable or malformed. The text never holds key material."""


def key_id(key: bytes) -> str:
    return hashlib.sha256(_ID_LABEL + key).hexdigest()[:8]


@dataclass(frozen=True)
class KeyEntry:
    key: bytes = field(repr=False)
    flag: str | None = None

    @property
    def id(self) -> str:
        return key_id(self.key)

    def __repr__(self) -> str:  # never show key material
        return f"KeyEntry(id={self.id}, flag={self.flag})"


@dataclass(frozen=True)
class Keyring:
    """The keys of a keyring file, in file order."""

    entries: tuple[KeyEntry, ...]

    def __post_init__(self) -> None:
        if not self.entries:
            raise KeyringError("the keyring holds no key")
        if self.entries[0].flag == FLAG_NEXT:
            raise KeyringError("the first key of the keyring seals: it cannot be flagged 'next'")
        ids = [e.id for e in self.entries]
        if len(set(ids)) != len(ids):
            raise KeyringError("the keyring holds the same key id twice")

    @property
    def sealing(self) -> KeyEntry:
        return self.entries[0]

    @property
    def ids(self) -> list[str]:
        return [e.id for e in self.entries]

    @property
    def prepared(self) -> KeyEntry | None:
        """The key written by ``rotate --prepare`` and not promoted yet, if any."""
        return next((e for e in self.entries if e.flag == FLAG_NEXT), None)

    @property
    def retiring(self) -> list[KeyEntry]:
        """Keys that open but neither seal nor wait to be promoted: an unfinished rotation."""
        return [e for e in self.entries[1:] if e.flag is None]

    def with_new_key(self) -> tuple["Keyring", KeyEntry]:
        """This keyring plus a fresh random key flagged ``next`` (an id never equal to one here)."""
        while True:
            entry = KeyEntry(secrets.token_bytes(KEY_BYTES), FLAG_NEXT)
            if entry.id not in self.ids:
                return Keyring(self.entries + (entry,)), entry

    def promoted(self, entry: KeyEntry) -> "Keyring":
        """``entry`` becomes the sealing key; the previous sealing key (and the rest) only open."""
        rest = tuple(KeyEntry(e.key) for e in self.entries if e.id != entry.id)
        return Keyring((KeyEntry(entry.key),) + rest)

    def without(self, ids: set[str]) -> "Keyring":
        return Keyring(tuple(e for e in self.entries if e.id not in ids))

    def render(self) -> bytes:
        lines = [base64.b64encode(e.key) + (b" " + e.flag.encode() if e.flag else b"") for e in self.entries]
        return b"\n".join(lines) + b"\n"


def parse(raw: bytes, source: str) -> Keyring:
    entries = []
    for number, line in enumerate(raw.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith(b"#"):
            continue
        parts = line.split()
        flag = parts[1].decode("ascii", "replace") if len(parts) > 1 else None
        if len(parts) > 2 or (flag is not None and flag not in _FLAGS):
            raise KeyringError(f"master key file {source}, line {number}: expected a Base64 key and "
                               f"at most one flag ({', '.join(_FLAGS)})")
        try:
            key = base64.b64decode(parts[0], validate=True)
        except (ValueError, binascii.Error):
            key = b""
        if len(key) != KEY_BYTES:
            raise KeyringError(f"master key file {source}, line {number}: not a Base64 32-byte key")
        entries.append(KeyEntry(key, flag))
    if not entries:
        raise KeyringError(f"master key file {source} is not a base64 32-byte key")
    return Keyring(tuple(entries))


def read(path: Path) -> Keyring:
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise KeyringError(f"cannot read master key file {path}: {exc.strerror}") from None
    return parse(raw, str(path))


def file_stamp(path: Path) -> tuple[int, int, int] | None:
    """What changes when the file is replaced or rewritten (inode, mtime, size); None if absent."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: mode 0600 from the start, fsynced, renamed over, directory fsynced."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def write_new(path: Path, data: bytes) -> None:
    """Create ``path`` (mode 0600, fsynced); refuses to overwrite an existing file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    _fsync_dir(Path(path).parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
