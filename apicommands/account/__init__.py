"""account commands."""
