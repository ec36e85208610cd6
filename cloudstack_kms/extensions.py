"""Imports every subsystem that registers seeds, job instance types or background tasks.

Kept in one place so the CLI and the app factory load the same set.
"""
from __future__ import annotations

from .jobs import queue
from .models import Account, Domain, User
from .models import kms as kms_models
from .services import bootstrap
from .services.kms import keys as kms_keys
from .services.kms import profiles as kms_profiles
from .services import volumes
from .models.volume import DiskOffering, Volume
from .models import DataCenter
from .storage import pools

queue.register_instance_type("Domain", Domain)
queue.register_instance_type("Account", Account)
queue.register_instance_type("User", User)
queue.register_instance_type("KmsKey", kms_models.KmsKey)
queue.register_instance_type("HsmProfile", kms_models.HsmProfile)
bootstrap.EXTRA_SEEDS.append(kms_profiles.seed_database_profile)
queue.register_instance_type("Volume", Volume)
queue.register_instance_type("Zone", DataCenter)
queue.register_instance_type("DiskOffering", DiskOffering)
bootstrap.EXTRA_SEEDS.append(pools.seed_pools)
kms_keys.VOLUME_USAGE_CHECKS.append(volumes.volume_usage_check)
