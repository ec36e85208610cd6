"""config commands."""
