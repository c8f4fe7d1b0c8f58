"""How a domain rule says no. Standard library only, so that every
`domain.py` may import it and stay free of nameko, marshmallow and SQLAlchemy;
the kernel's `errors.enforce` turns these into the caller's error."""


class RuleBroken(Exception):
    """The change conflicts with the current state: a 409. `details` (optional)
    go to the caller with the message, e.g. which step may come next."""

    def __init__(self, message: str, details: dict | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def __str__(self):
        return self.message


class NotAllowed(RuleBroken):
    """This person may not do this here: a 403."""
