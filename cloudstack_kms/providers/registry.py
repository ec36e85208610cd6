"""Providers by protocol name (case-insensitive), one instance per process.

Providers are discovered through the ``cloudstack_kms.providers`` entry-point group declared
in ``setup.cfg``, so a third-party package can add one; the two built-in providers are also
registered directly so a source checkout works without installing.
"""
from __future__ import annotations

import logging
import threading
from importlib.metadata import entry_points

from .base import KmsProvider, ProviderNotInitialized
from .context import ProviderContext

log = logging.getLogger(__name__)


def _builtin() -> dict[str, type[KmsProvider]]:
    from .database import DatabaseProvider
    from .pkcs11 import Pkcs11Provider
    return {"database": DatabaseProvider, "pkcs11": Pkcs11Provider}


class ProviderRegistry:
    def __init__(self, context: ProviderContext) -> None:
        self.context = context
        self._classes = _builtin()
        for ep in entry_points(group="cloudstack_kms.providers"):
            if ep.name.lower() in self._classes:
                continue
            try:
                self._classes[ep.name.lower()] = ep.load()
            except Exception:  # noqa: BLE001 - a broken plugin must not stop the server
                log.exception("KMS provider plugin %s failed to load", ep.name)
        self._instances: dict[str, KmsProvider] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        return sorted(self._classes)

    def has(self, protocol: str) -> bool:
        return (protocol or "").lower() in self._classes

    def get(self, protocol: str) -> KmsProvider:
        name = (protocol or "").lower()
        with self._lock:
            provider = self._instances.get(name)
            if provider is None:
                cls = self._classes.get(name)
                if cls is None:
                    raise ProviderNotInitialized(f"No provider found for protocol: {protocol}")
                provider = self._instances[name] = cls(self.context)
            return provider

    def close(self) -> None:
        for provider in self._instances.values():
            provider.close()
