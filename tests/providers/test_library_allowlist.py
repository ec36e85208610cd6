"""The PKCS#11 module allow-list in the provider: checked when a profile's details are validated
and again before a module is loaded (defence in depth), comparing real paths."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from cloudstack_kms.providers.base import InvalidProviderParameter, ProviderNotInitialized
from cloudstack_kms.providers.pkcs11 import Pkcs11Provider, allowed_library, library
from tests.support.softhsm import MODULE

from .conftest import pkcs11_profile_for

DEBIAN = "/usr/lib/softhsm/libsofthsm2.so"


def test_default_allows_softhsm2_only(monkeypatch):
    monkeypatch.delenv("KMS_PKCS11_LIBRARIES", raising=False)
    assert allowed_library(DEBIAN) == DEBIAN
    assert allowed_library("/usr/lib/x86_64-linux-gnu/libc.so.6") is None
    monkeypatch.setenv("KMS_PKCS11_LIBRARIES", "")  # set but empty: no module at all
    assert allowed_library(DEBIAN) is None


def test_validation_compares_real_paths(tmp_path, monkeypatch):
    vendor = tmp_path / "lib" / "vendor.so"  # validation loads nothing: it need not exist
    monkeypatch.setenv("KMS_PKCS11_LIBRARIES", os.pathsep.join([MODULE, str(vendor)]))
    evil = tmp_path / "evil.so"
    evil.write_bytes(b"\x7fELF")
    (tmp_path / "looks-allowed.so").symlink_to(evil)
    (tmp_path / "softhsm.so").symlink_to(MODULE)
    provider = Pkcs11Provider()
    for path in (evil, tmp_path / "looks-allowed.so", f"{vendor.parent}/../evil.so"):
        with pytest.raises(InvalidProviderParameter, match="is not on this server's allow-list"):
            provider.validate_details({"library": str(path), "token_label": "t"})
    for path in (vendor, f"{tmp_path}/lib/../lib/vendor.so", tmp_path / "softhsm.so"):
        provider.validate_details({"library": str(path), "token_label": "t"})


def test_one_library_object_per_module_whatever_the_spelling(tmp_path):
    """Two spellings of one module must share its lock (SoftHSM2 is not thread-safe here)."""
    (tmp_path / "softhsm.so").symlink_to(MODULE)
    assert library(str(tmp_path / "softhsm.so")) is library(MODULE)
    assert library(str(tmp_path / "softhsm.so")).path == allowed_library(MODULE)


def test_a_module_off_the_list_is_never_loaded(pkcs11_provider, softhsm, hsm_token, tmp_path, monkeypatch):
    """A profile stored before the list changed (or written into the database directly)."""
    copy = tmp_path / "libcopy.so"
    shutil.copy(MODULE, copy)
    profile = pkcs11_profile_for(softhsm, hsm_token, library=str(copy))
    with pytest.raises(ProviderNotInitialized, match=f"PKCS#11 library {copy} is not on this server's allow-list"):
        pkcs11_provider.kek_available(profile, "anything")
    assert str(copy) not in Path("/proc/self/maps").read_text()
    # The same profile works once the operator allows the module's path.
    monkeypatch.setenv("KMS_PKCS11_LIBRARIES", os.pathsep.join([MODULE, str(tmp_path / "link.so")]))
    (tmp_path / "link.so").symlink_to(MODULE)
    allowed = pkcs11_profile_for(softhsm, hsm_token, library=str(tmp_path / "link.so"))
    assert pkcs11_provider.kek_available(allowed, "anything") is False
