"""job commands."""
