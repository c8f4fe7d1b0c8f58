"""Entrypoints every Linli service has, whatever its domain."""
import inspect
import logging

from marshmallow import ValidationError
from nameko.exceptions import MalformedRequest
from kombu import Queue
from nameko.rpc import Rpc, RpcConsumer
from nameko.timer import timer

from services.common import caller, events
from services.common import nameko_patches  # noqa: F401 -- a lost connection must not kill a service; replies unconfirmed
from services.common.errors import InvalidInput, LinliError
from services.common.metrics import Metrics
from services.common.schemas import refuse_unstorable

# Refusals a caller caused: logged as warnings, not as errors of the service.
EXPECTED_ERRORS = (LinliError, ValidationError)


class _OneLineForExpected(logging.Filter):
    """nameko logs a refusal (an expected error) with its traceback: a 404 or a
    400 is the caller's doing, and one line says all there is to say."""

    def filter(self, record):
        if isinstance(record.msg, str) and record.msg.startswith("(expected) error handling worker"):
            record.exc_info = record.exc_text = None
        return True


logging.getLogger("nameko.containers").addFilter(_OneLineForExpected())


class QuorumRpcConsumer(RpcConsumer):
    """nameko's `rpc-<service>` queue as a quorum queue with Linli's delivery
    limit (events.durable_queue_arguments). Every instance of a service must
    declare it alike, or RabbitMQ refuses the second (406): nameko 2.14 builds
    it with no arguments, so every Linli entrypoint uses this one. A request
    delivered more than the limit times unsettled (an instance that keeps dying
    on it) is dropped by the broker: its caller has long timed out."""

    def setup(self):
        super().setup()  # nameko's name, exchange and binding; registers with the queue consumer
        self.queue = Queue(self.queue.name, exchange=self.queue.exchange, routing_key=self.queue.routing_key,
                           durable=True, auto_delete=False, exclusive=False,
                           queue_arguments=events.durable_queue_arguments(self.container.config))


class VouchedRpc(Rpc):
    """nameko's RPC entrypoint, for calls the gateway vouched for only
    (services/common/caller.py), whose arguments hold no text a database
    cannot store. Both checks come before anything else: a call refused there
    spawns no worker, so it reads, writes and audits nothing."""

    rpc_consumer = QuorumRpcConsumer()
    caller_check = caller.CallerCheck()
    signature = None

    def setup(self):
        super().setup()
        self.signature = inspect.signature(getattr(self.container.service_cls, self.method_name))

    def handle_message(self, body, message):
        try:
            args, kwargs = body["args"], body["kwargs"]
        except (KeyError, TypeError):
            raise MalformedRequest("Message missing `args` or `kwargs`")
        self.caller_check.check(message, self.method_name, args, kwargs)
        if isinstance(args, list) and isinstance(kwargs, dict):
            self.check_signature(args, kwargs)
            self._refuse_unstorable(args, kwargs)
        super().handle_message(body, message)

    def _refuse_unstorable(self, args: list, kwargs: dict):
        """InvalidInput naming each argument (a payload's own fields) that holds
        text no database can store, whoever the caller."""
        signature = self.signature or inspect.signature(getattr(self.container.service_cls, self.method_name))
        arguments = signature.bind(None, *args, **kwargs).arguments
        arguments.pop(next(iter(arguments)))  # self
        bad = {}
        for name, value in arguments.items():
            try:
                refuse_unstorable(value if isinstance(value, dict) else {name: value})
            except InvalidInput as refused:
                bad |= refused.details["fields"]
        if bad:
            raise InvalidInput("The request has invalid fields.", {"fields": bad})

    def unpack_message_headers(self, message):
        context_data = super().unpack_message_headers(message)
        context_data.pop(caller.HEADER, None)  # for this call only: never passed on
        return context_data


# nameko's @rpc, vouched for and checked, with our refusals marked as expected.
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
