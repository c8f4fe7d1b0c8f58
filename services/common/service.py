"""Entrypoints every Linli service has, whatever its domain."""
import functools
import inspect
import logging

from marshmallow import ValidationError
from nameko.exceptions import IncorrectSignature, MalformedRequest, serialize
from kombu import Queue
from nameko.rpc import Rpc, RpcConsumer
from nameko.timer import timer
from nameko.web.handlers import HttpRequestHandler

from services.common import caller, events
from services.common.db import as_retryable
from services.common import nameko_patches  # noqa: F401 -- a lost connection must not kill a service; replies unconfirmed
from services.common import runtime  # noqa: F401 -- the garbage collector's thresholds for every process
from services.common.errors import InvalidInput, LinliError
from services.common import logs
from services.common.logs import RequestIds
from services.common.metrics import Metrics
from services.common.schemas import refuse_unstorable

log = logging.getLogger(__name__)

# Refusals a caller caused: logged as warnings, not as errors of the service.
EXPECTED_ERRORS = (LinliError, ValidationError)


class _OneLineForExpected(logging.Filter):
    """nameko logs a refusal (an expected error) with its traceback, and an
    HTTP worker's error whatever it is. A 404 or a 409 is the caller's doing:
    one line says all there is to say, without the refusal's text (which may
    quote what the caller sent). The gateway's HTTP workers log nothing here:
    its access line (services/gateway/http.py) says how each request ended,
    and its error mapping logs the unexpected with their traceback."""

    def filter(self, record):
        if not (isinstance(record.msg, str) and "error handling worker" in record.msg and record.args):
            return True
        worker_ctx = record.args[0]
        if isinstance(getattr(worker_ctx, "entrypoint", None), HttpRequestHandler):
            return False
        if record.msg.startswith("(expected) error handling worker"):
            error = record.exc_info[1] if record.exc_info else None
            status, code = getattr(error, "status", 400), getattr(error, "code", "invalid_input")
            entrypoint = f"{worker_ctx.service_name}.{worker_ctx.entrypoint.method_name}"
            record.msg, record.args = "refused %s: %s %s", (entrypoint, status, code)
            record.entrypoint, record.status, record.code = entrypoint, status, code
            record.error = type(error).__name__ if error is not None else None
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
        self._vouched_arguments(body, message)
        super().handle_message(body, message)  # nameko's: check_signature (below), then the worker

    def check_signature(self, args, kwargs):
        """In place of nameko's (inspect.getcallargs on every call, ~3 % of a
        service's CPU per RPC under load): the method's signature bound once,
        and the text checks, in _check_arguments."""
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise MalformedRequest("`args` is a list and `kwargs` an object")
        self._check_arguments(args, kwargs, self.signature or inspect.signature(
            getattr(self.container.service_cls, self.method_name)))

    def _vouched_arguments(self, body, message) -> tuple:
        """The call's args and kwargs, once the gateway's assertion on the message is checked."""
        try:
            args, kwargs = body["args"], body["kwargs"]
        except (KeyError, TypeError):
            raise MalformedRequest("Message missing `args` or `kwargs`")
        self.caller_check.check(message, self.method_name, args, kwargs)
        return args, kwargs

    def _check_arguments(self, args: list, kwargs: dict, signature: inspect.Signature):
        """IncorrectSignature if the method cannot take these arguments; then
        InvalidInput naming each argument (a payload's own fields) that holds
        text no database can store, whoever the caller."""
        try:
            arguments = signature.bind(None, *args, **kwargs).arguments
        except TypeError as exc:
            raise IncorrectSignature(str(exc))
        arguments.pop(next(iter(arguments)))  # self
        bad = {}
        for name, value in arguments.items():
            try:
                refuse_unstorable(value if isinstance(value, dict) else {name: value})
            except InvalidInput as refused:
                bad |= refused.details["fields"]
        if bad:
            raise InvalidInput("The request has invalid fields.", {"fields": bad})

    def handle_result(self, message, worker_ctx, result, exc_info):
        if exc_info is not None:  # a busy database is the caller's 503, not our 500
            error = as_retryable(exc_info[1])
            exc_info = exc_info if error is exc_info[1] else (type(error), error, exc_info[2])
        return super().handle_result(message, worker_ctx, result, exc_info)

    def unpack_message_headers(self, message):
        context_data = super().unpack_message_headers(message)
        context_data.pop(caller.HEADER, None)  # for this call only: never passed on
        return context_data


class VouchedCallsRpc(VouchedRpc):
    """The entrypoint of `call_many`: one RPC carrying many calls of one
    @grouped write, which the gateway coalesced (services/gateway/rpc.py). The
    RPC is vouched for and checked as any: its one assertion covers the method
    and every call in it, each call's caller, arguments and request id, so a
    call changed, added, dropped or given another caller on the way fails the
    whole RPC. Then each call is checked here as VouchedRpc checks a call of
    its own: the method's signature, text a database can store. A call refused
    here is answered with its own error, and the others go on."""

    def setup(self):
        super().setup()
        self._signatures: dict[str, inspect.Signature] = {}  # of each @grouped method, by name

    def handle_message(self, body, message):
        args, kwargs = self._vouched_arguments(body, message)
        if args or not isinstance(kwargs, dict) or not isinstance(kwargs.get("calls"), list):
            raise MalformedRequest("call_many takes method= and calls=[...]")
        method = kwargs.get("method")
        target = getattr(self.container.service_cls, method, None) if isinstance(method, str) else None
        if getattr(target, "grouped", None) is None:
            raise MalformedRequest("call_many carries calls of a @grouped method only")
        signature = self._signatures.get(method)
        if signature is None:
            signature = self._signatures[method] = inspect.signature(target)
        calls = [self._checked(call, signature) for call in kwargs["calls"]]
        Rpc.handle_message(self, {"args": [], "kwargs": {"method": method, "calls": calls}}, message)

    def check_signature(self, args, kwargs):
        """Nothing left to check: handle_message built these arguments, and checked each call."""

    def _checked(self, call, signature: inspect.Signature) -> dict:
        try:
            if not isinstance(call, dict) or not isinstance(call.get("args"), list) \
                    or not isinstance(call.get("kwargs"), dict):
                raise MalformedRequest("a call is {args: [...], kwargs: {...}, request_id: ...}")
            args, kwargs = call["args"], call["kwargs"]
            self._check_arguments(args, kwargs, signature)
        except Exception as exc:
            return {"refused": serialize(exc)}
        request_id = call.get("request_id")
        return {"args": args, "kwargs": kwargs, "request_id": request_id if isinstance(request_id, str) else None}


# nameko's @rpc, vouched for and checked, with our refusals marked as expected.
rpc = VouchedRpc.decorator(expected_exceptions=EXPECTED_ERRORS)

# Constants because nameko fixes a timer's interval when the class is defined.
RELAY_INTERVAL_SECONDS = 2
FORGET_KEYS_INTERVAL_SECONDS = 600


class KernelEntrypoints:
    """Mixed into each service class, which provides `name` and `db`."""

    metrics = Metrics()
    request_ids = RequestIds()  # each worker's request id in every line it logs (services/common/logs.py)

    @rpc
    def ping(self) -> dict:
        """Readiness probe: answers once the service consumes RPC."""
        return {"service": self.name, "ok": True}

    @VouchedCallsRpc.decorator(expected_exceptions=EXPECTED_ERRORS)
    def call_many(self, method: str, calls: list) -> list[dict]:
        """Many calls of one @grouped write, each checked on its own
        (VouchedCallsRpc), all in the process's group commit: each call's
        {"answer": ...} or {"error": ...} (nameko's form of a remote error), in order."""
        entry = getattr(type(self), method)
        write = entry.grouped
        runs = [None if "refused" in call else (call["request_id"], functools.partial(
            write, self, *call["args"], **call["kwargs"])) for call in calls]
        outcomes = iter(self.db.in_group_many([run for run in runs if run is not None], entry.orm))
        answers = []
        for call, run in zip(calls, runs, strict=True):
            answer, error = (None, None) if run is None else next(outcomes)
            with logs.request_id_bound(call.get("request_id")):  # each call's line under its own request's id
                error = None if error is None else as_retryable(error)
                if run is None:
                    log.warning("refused %s.%s in call_many", self.name, method)
                    answers.append({"error": call["refused"]})
                elif error is None:
                    log.info("ran %s.%s in call_many", self.name, method)
                    answers.append({"answer": answer})
                else:
                    if isinstance(error, EXPECTED_ERRORS):
                        log.warning("refused %s.%s in call_many: %s %s", self.name, method,
                                    getattr(error, "status", 400), getattr(error, "code", "invalid_input"))
                    else:
                        log.error("error in %s.%s in call_many", self.name, method,
                                  exc_info=(type(error), error, error.__traceback__))
                    answers.append({"error": serialize(error)})
        return answers

    @timer(interval=RELAY_INTERVAL_SECONDS)
    def relay_outbox(self):
        """Publish what a crash or a broker outage left in the outbox."""
        self.db.relay_pending()

    @timer(interval=FORGET_KEYS_INTERVAL_SECONDS)
    def forget_old_idempotency_keys(self):
        """A retry comes within minutes; a key and its answer are kept a day."""
        self.db.forget_idempotent_requests()
