"""misc commands."""
