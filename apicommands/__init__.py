"""Every API command, one module per command, named after it (``createZone`` → ``zone/create_zone.py``)."""
