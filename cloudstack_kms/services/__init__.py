"""Business logic that does not depend on Flask. Functions take the session; they never commit."""
