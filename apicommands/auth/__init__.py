"""auth commands."""
