"""The one endpoint, ``/client/api``: authentication, commands, rendering and errors."""
