"""Disk offering commands."""
