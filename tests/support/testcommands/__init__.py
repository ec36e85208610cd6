"""Test-only API commands, loaded by a server started with
``KMS_EXTRA_COMMAND_PACKAGES=tests.support.testcommands``. Never shipped."""
