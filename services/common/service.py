"""Entrypoints every Linli service has, whatever its domain."""
from marshmallow import ValidationError
from nameko.exceptions import MalformedRequest
from nameko.rpc import Rpc
from nameko.timer import timer

from services.common import caller
from services.common import nameko_patches  # noqa: F401 -- a lost connection must not kill a service; replies unconfirmed
from services.common.errors import LinliError
from services.common.metrics import Metrics

# Refusals a caller caused: logged as warnings, not as errors of the service.
EXPECTED_ERRORS = (LinliError, ValidationError)



class VouchedRpc(Rpc):
    """nameko's RPC entrypoint, for calls the gateway vouched for only
    (services/common/caller.py). The check comes before anything else: a call
    refused there spawns no worker, so it reads, writes and audits nothing."""

    caller_check = caller.CallerCheck()

    def handle_message(self, body, message):
        try:
            args, kwargs = body["args"], body["kwargs"]
        except (KeyError, TypeError):
            raise MalformedRequest("Message missing `args` or `kwargs`")
        self.caller_check.check(message, self.method_name, args, kwargs)
        super().handle_message(body, message)

    def unpack_message_headers(self, message):
        context_data = super().unpack_message_headers(message)
        context_data.pop(caller.HEADER, None)  # for this call only: never passed on
        return context_data


# nameko's @rpc, vouched for, with our refusals marked as expected.
rpc = VouchedRpc.decorator(expected_exceptions=EXPECTED_ERRORS)

# Constants because nameko fixes a timer's interval when the class is defined.
RELAY_INTERVAL_SECONDS = 2
FORGET_KEYS_INTERVAL_SECONDS = 600


class KernelEntrypoints:
    """Mixed into each service class, which provides `name` and `db`."""

    metrics = Metrics()

    @rpc
    def ping(self) -> dict:
        """Readiness probe: answers once the service consumes RPC."""
        return {"service": self.name, "ok": True}

    @timer(interval=RELAY_INTERVAL_SECONDS)
    def relay_outbox(self):
        """Publish what a crash or a broker outage left in the outbox."""
        self.db.relay_pending()

    @timer(interval=FORGET_KEYS_INTERVAL_SECONDS)
    def forget_old_idempotency_keys(self):
        """A retry comes within minutes; a key and its answer are kept a day."""
        self.db.forget_idempotent_requests()
