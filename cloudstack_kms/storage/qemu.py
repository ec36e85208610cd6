"""qemu-img / qemu-io calls that take a volume secret.

The secret never appears on a command line (where any local user could read it in the
process list) and never touches the disk: it is written into a pipe whose read end the
child inherits and opens as ``/dev/fd/N``. The caller's buffer is left for the caller to
zero.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

QEMU_IMG = os.environ.get("KMS_QEMU_IMG", "qemu-img")
QEMU_IO = os.environ.get("KMS_QEMU_IO", "qemu-io")
TIMEOUT_SEC = 600


class QemuError(Exception):
    """qemu failed; ``message`` is qemu's own text (it never contains the secret)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def available() -> str | None:
    for tool in (QEMU_IMG, QEMU_IO):
        if shutil.which(tool) is None:
            return f"{tool} not found (apt-get install qemu-utils)"
    return None


def _opt(value: str) -> str:
    """Escape a value inside a qemu option string (commas are doubled)."""
    return value.replace(",", ",,")


@contextmanager
def secret_fd(secret: bytes | bytearray) -> Iterator[int]:
    """A pipe holding ``secret``; yields the read end for the child to inherit."""
    read_end, write_end = os.pipe()
    try:
        view = memoryview(secret)  # no immutable copy of the secret
        while view:  # far below the pipe buffer size: never blocks
            view = view[os.write(write_end, view):]
        os.close(write_end)
        write_end = -1
        yield read_end
    finally:
        if write_end >= 0:
            os.close(write_end)
        os.close(read_end)


def _run(args: list[str], fd: int | None) -> subprocess.CompletedProcess:
    try:
        result = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT_SEC,
                                pass_fds=(fd,) if fd is not None else ())
    except FileNotFoundError:
        raise QemuError(f"{args[0]} not found") from None
    except subprocess.TimeoutExpired:
        raise QemuError(f"{args[0]} timed out") from None
    return result


def _secret_object(fd: int) -> str:
    return f"secret,id=sec0,file=/dev/fd/{fd},format=raw"


def _image_opts(path: str, encrypted: bool) -> str:
    opts = f"driver=qcow2,file.filename={_opt(path)}"
    return opts + ",encrypt.key-secret=sec0" if encrypted else opts


#: qemu's PBKDF2 benchmark (LUKS create) fails when the thread's CPU-time counter has not moved
#: over one round, which happens on a busy host; the create is simply tried again.
CPU_USAGE_ERROR = "Unable to get accurate CPU usage"
CREATE_ATTEMPTS = 4


def create(path: str, size_bytes: int, secret: bytes | bytearray | None, iter_time_ms: int = 2000) -> None:
    """A qcow2 image, LUKS-encrypted with ``secret`` when one is given."""
    if secret is None:
        result = _run([QEMU_IMG, "create", "-q", "-f", "qcow2", path, str(size_bytes)], None)
    else:
        for attempt in range(1, CREATE_ATTEMPTS + 1):
            with secret_fd(secret) as fd:
                result = _run([QEMU_IMG, "create", "-q", "-f", "qcow2", "--object", _secret_object(fd), "-o",
                               f"encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time={int(iter_time_ms)}",
                               path, str(size_bytes)], fd)
            if result.returncode == 0 or CPU_USAGE_ERROR not in result.stderr or attempt == CREATE_ATTEMPTS:
                break
            try:
                os.unlink(path)  # the half-made image of the failed attempt
            except FileNotFoundError:
                pass
    if result.returncode != 0:
        raise QemuError(result.stderr.strip() or "qemu-img create failed")


def info(path: str) -> dict:
    """``qemu-img info`` (needs no secret: the LUKS header is readable)."""
    result = _run([QEMU_IMG, "info", "--output=json", "-U", path], None)
    if result.returncode != 0:
        raise QemuError(result.stderr.strip() or "qemu-img info failed")
    return json.loads(result.stdout)


def is_luks(path: str) -> bool:
    encrypt = info(path).get("format-specific", {}).get("data", {}).get("encrypt") or {}
    return encrypt.get("format") == "luks"


@dataclass
class CheckResult:
    unlocked: bool
    report: dict
    error: str | None = None


def check(path: str, secret: bytes | bytearray | None) -> CheckResult:
    """``qemu-img check`` opening the image with ``secret`` (None for a plain image)."""
    if secret is None:
        result = _run([QEMU_IMG, "check", "--output=json", "-f", "qcow2", path], None)
    else:
        with secret_fd(secret) as fd:
            result = _run([QEMU_IMG, "check", "--output=json", "--object", _secret_object(fd), "--image-opts",
                           _image_opts(path, True)], fd)
    try:
        report = json.loads(result.stdout) if result.stdout.strip() else {}
    except ValueError:
        report = {}
    if not report:
        return CheckResult(False, {}, result.stderr.strip() or "qemu-img check failed")
    return CheckResult(True, report, None if result.returncode == 0 else result.stderr.strip() or None)


def io(path: str, secret: bytes | bytearray | None, command: str) -> str:
    """Run one ``qemu-io`` command (e.g. ``write -P 0xab 0 1M``) on the opened image; returns its output."""
    if secret is None:
        result = _run([QEMU_IO, "-f", "qcow2", "-c", command, path], None)
    else:
        with secret_fd(secret) as fd:
            result = _run([QEMU_IO, "--object", _secret_object(fd), "--image-opts", _image_opts(path, True),
                           "-c", command], fd)
    output = (result.stdout + result.stderr).strip()
    if result.returncode != 0 or "Pattern verification failed" in output or "Could not open" in output:
        raise QemuError(output or "qemu-io failed")
    return output
