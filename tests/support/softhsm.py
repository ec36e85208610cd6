"""Throw-away SoftHSM2 tokens for tests: a private config and token directory per fixture.

The module path comes from ``KMS_TEST_PKCS11_MODULE`` or the Debian location; tests skip
with the reason when neither exists (``tools/test.sh`` installs ``softhsm2``).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

MODULE = os.environ.get("KMS_TEST_PKCS11_MODULE", "/usr/lib/softhsm/libsofthsm2.so")
USER_PIN = "1234"
SO_PIN = "5678"


def available() -> str | None:
    """None when SoftHSM2 can be used, else why not."""
    if not Path(MODULE).exists():
        return f"PKCS#11 module {MODULE} not found (apt-get install softhsm2)"
    if shutil.which("softhsm2-util") is None:
        return "softhsm2-util not found (apt-get install softhsm2)"
    return None


@dataclass
class SoftHsm:
    root: Path

    @property
    def conf(self) -> Path:
        return self.root / "softhsm2.conf"

    @property
    def tokendir(self) -> Path:
        return self.root / "tokens"

    @property
    def env(self) -> dict[str, str]:
        return {"SOFTHSM2_CONF": str(self.conf)}

    def setup(self) -> "SoftHsm":
        self.tokendir.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(f"directories.tokendir = {self.tokendir}\nobjectstore.backend = file\n"
                             "log.level = ERROR\nslots.removable = false\n")
        return self

    def init_token(self, label: str, pin: str = USER_PIN) -> None:
        # softhsm2-util reads every token of the directory first; once in a CI run it failed with
        # "Could not get info about the token in slot 0" (a token being written by the test
        # process's own SoftHSM at that moment, as far as one can tell). That failure is retried.
        for attempt in range(3):
            done = subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", pin,
                                   "--so-pin", SO_PIN], env={**os.environ, **self.env}, capture_output=True)
            if done.returncode == 0 or b"Could not get info about the token" not in done.stderr or attempt == 2:
                break
            time.sleep(0.2)
        done.check_returncode()

    def details(self, label: str, pin: str = USER_PIN, **extra: str) -> dict[str, str]:
        """Profile details for a token of this SoftHSM."""
        return {"library": MODULE, "token_label": label, "pin": pin, **extra}
