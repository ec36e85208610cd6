"""Test helpers: a real server process, a signing client, tenant factories."""
