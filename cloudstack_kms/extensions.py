"""Imports every subsystem that registers seeds, job instance types or background tasks.

Kept in one place so the CLI and the app factory load the same set.
"""
from __future__ import annotations

from .jobs import queue
from .models import Account, Domain, User

queue.register_instance_type("Domain", Domain)
queue.register_instance_type("Account", Account)
queue.register_instance_type("User", User)
