"""Temporary: the error catalogue moved to :mod:`cloudstack_kms.errors`."""
from ..errors import *  # noqa: F401,F403
