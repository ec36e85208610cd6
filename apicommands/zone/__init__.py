"""zone commands."""
