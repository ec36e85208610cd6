"""role commands."""
