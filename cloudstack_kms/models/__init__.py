"""SQLAlchemy models, one module per aggregate. Importing this package registers every table."""
from .base import Base, new_uuid, utcnow  # noqa: F401
from .configuration import Configuration, Version  # noqa: F401
from .events import Event  # noqa: F401
from .jobs import ApiSession, AsyncJob, ManagementServer  # noqa: F401
from .tenancy import Account, Domain, Role, User  # noqa: F401
from .zone import DataCenter  # noqa: F401
from . import kms  # noqa: F401,E402  (KMS tables)
from . import volume  # noqa: F401,E402  (volumes, offerings, pools, passphrases)
from . import throttle  # noqa: F401,E402  (api_rate_limit, API throttling)
