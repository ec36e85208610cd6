"""Primary storage commands."""
