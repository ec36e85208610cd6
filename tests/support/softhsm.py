"""Throw-away SoftHSM2 tokens for tests: a private config and token directory per fixture.

The module path comes from ``KMS_TEST_PKCS11_MODULE`` or the Debian location; tests skip
with the reason when neither exists (``tools/test.sh`` installs ``softhsm2``).
"""
from __future__ import annotations

import os
import shutil
import subprocess
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
        subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", pin,
                        "--so-pin", SO_PIN], env={**os.environ, **self.env}, check=True, capture_output=True)

    def details(self, label: str, pin: str = USER_PIN, **extra: str) -> dict[str, str]:
        """Profile details for a token of this SoftHSM."""
        return {"library": MODULE, "token_label": label, "pin": pin, **extra}
