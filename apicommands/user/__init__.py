"""user commands."""
