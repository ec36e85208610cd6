"""event commands."""
