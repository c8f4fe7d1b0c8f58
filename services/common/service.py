"""Entrypoints every Linli service has, whatever its domain."""
from nameko.rpc import rpc
from nameko.timer import timer

# A constant because nameko fixes a timer's interval when the class is defined.
RELAY_INTERVAL_SECONDS = 2


class KernelEntrypoints:
    """Mixed into each service class, which provides `name` and `db`."""

    @rpc
    def ping(self) -> dict:
        """Readiness probe: answers once the service consumes RPC."""
        return {"service": self.name, "ok": True}

    @timer(interval=RELAY_INTERVAL_SECONDS)
    def relay_outbox(self):
        """Publish what a crash or a broker outage left in the outbox."""
        self.db.relay_pending()
