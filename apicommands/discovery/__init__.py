"""discovery commands."""
