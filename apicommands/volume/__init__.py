"""Volume commands."""
