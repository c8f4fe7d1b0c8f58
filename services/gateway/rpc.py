"""RPC to the other services with a deadline: nameko 2's proxy waits forever,
and a client must get a 503 instead. And with a bound on the calls in flight
to each service: past it, a call waits for a slot only if it can expect one
within the admission deadline, else it is refused at once with a 503 and
Retry-After (load shedding) rather than queued behind the service's backlog. And each call
vouched for (services/common/caller.py): the services refuse any other."""
from __future__ import annotations

import eventlet
from eventlet.event import Event
from nameko.exceptions import deserialize
from nameko.rpc import RpcProxy

from services.common import caller, logs
from services.common import config as linli_config
from services.common.errors import Unavailable
from services.gateway.http import Admission, admission

# Probes are never shed: a busy service is still a ready one.
UNBOUNDED_METHODS = frozenset({"ping"})
# Creating writes of a service that groups them (@grouped): concurrent calls from this
# process go together as one `call_many` RPC (Coalescer).
COALESCED = {"donations": frozenset({"record_donation"}), "welfare": frozenset({"open_case"}),
             "patrol": frozenset({"report_incident"})}
# At most this many `call_many` RPCs of one method in flight from this process: the
# calls made meanwhile wait and go together in the next one.
COALESCED_IN_FLIGHT = 2
# But a second one goes only once this many calls wait for it; fewer wait for the RPC in
# flight. An RPC costs the gateway, the broker and the service more CPU than several of the
# writes in it, and at a moderate rate two RPCs of two writes each cost more than one of four
# (250 writes/s: 2.0 → 2.9 writes per RPC, 5.8 → 5.0 ms of CPU per write in all).
COALESCED_SECOND_AT = 8
COALESCED_MAX = 64


class Coalescer:
    """Concurrent calls of one @grouped write of one service go as one RPC,
    `call_many` (services/common/service.py), in place of one each: one request
    message and one reply for many writes, which the service then commits
    together. Each call inside keeps its own arguments (its caller among them),
    its own request id and Idempotency-Key, and gets its own answer or error.
    One assertion vouches for them all: the RPC's own, signed for `call_many`
    and a digest of every call in it, so no call can be changed, moved to
    another caller, added or dropped without the service refusing the whole
    RPC. (An assertion per call cost an Ed25519 signature here and a check in
    the service for each write: a fifth of the donations process's CPU.) The
    first call goes at once; while one RPC is in flight, the calls that come
    wait for it, unless COALESCED_SECOND_AT of them wait (then they go in a
    second one); while COALESCED_IN_FLIGHT are in flight, they wait. Calls
    enough for two RPCs, with none in flight, go as two of half each."""

    def __init__(self, service_name: str, method_name: str, timeout: float):
        self.service_name = service_name
        self.method_name = method_name
        self.timeout = timeout
        self._waiting: list[tuple] = []
        self._in_flight = 0
        self._gathering = False  # a batch's sender is spawned and has not yet taken its calls

    def call(self, proxy, args, kwargs):
        """(answer, None) or (None, the error), as _answer_or_error."""
        done = Event()
        # The request's id from its worker's context: this runs in a green thread
        # of its own (_within_deadline), whose context starts empty.
        request_id = proxy.worker_ctx.data.get(logs.REQUEST_ID_KEY)
        self._waiting.append((proxy, list(args), kwargs, request_id, done))
        self._send_what_waits()
        return done.wait()

    def _send_what_waits(self):
        if self._gathering or not self._waiting or self._in_flight >= COALESCED_IN_FLIGHT:
            return
        if self._in_flight == 0 or len(self._waiting) >= COALESCED_SECOND_AT:
            self._gathering = True
            self._in_flight += 1
            eventlet.spawn(self._send)

    def _send(self):
        # The batch is taken when this green thread runs, not when it was spawned: the calls
        # of the green threads woken meanwhile join it. (A batch's answers free its callers'
        # slots one by one; taken at once, the first caller to come back would go alone.)
        self._gathering = False
        # Alone in flight, a batch takes half of what waits when that is enough for two: the
        # other half goes at once as the second RPC. Taking all, a closed loop of writers (each
        # writes again when answered) could lock into one RPC of all of them, with the service
        # idle on every round trip (seen at 32 connections: 80 % of the writes sent so).
        take = COALESCED_MAX
        if self._in_flight == 1 and len(self._waiting) >= 2 * COALESCED_SECOND_AT:
            take = min(COALESCED_MAX, (len(self._waiting) + 1) // 2)
        batch, self._waiting = self._waiting[:take], self._waiting[take:]
        self._send_what_waits()  # what did not fit, if another RPC may be in flight
        try:
            calls = [{"args": args, "kwargs": kwargs, "request_id": request_id}
                     for _proxy, args, kwargs, request_id, _done in batch]
            proxy = batch[0][0]  # the first caller's: it signs the RPC's assertion, over every call
            answers, error = _within_deadline(self.timeout, self.service_name, lambda: _answer_or_error(
                proxy.call_many, (), {"method": self.method_name, "calls": calls}))
            if error is None and not (isinstance(answers, list) and len(answers) == len(batch)):
                error = Unavailable(f"The {self.service_name} service answered the batch wrongly.")
            for index, (*_call, done) in enumerate(batch):
                if error is not None:
                    done.send((None, error))
                elif "error" in answers[index]:
                    done.send((None, deserialize(answers[index]["error"])))
                else:
                    done.send((answers[index]["answer"], None))
        finally:
            self._in_flight -= 1
            self._send_what_waits()


class _DeadlineProxy:
    def __init__(self, proxy, service_name: str, timeout: float, admission: Admission,
                 wait_until: float | None = None, coalescers: dict | None = None,
                 grouped_admission: Admission | None = None, judged: bool = False):
        self._proxy = proxy
        self._service_name = service_name
        self._timeout = timeout
        self._admission = admission
        self._wait_until = wait_until  # the request's admission deadline, partly spent in the gateway's
        self._coalescers = coalescers or {}
        self._grouped_admission = grouped_admission  # the coalesced writes' own bound (ServiceRpc)
        self._judged = judged  # the request was let in by that bound's refuse_now (ApiEntrypoint)

    def __getattr__(self, method_name):
        method = getattr(self._proxy, method_name)

        if method_name in UNBOUNDED_METHODS:
            return lambda *args, **kwargs: self._call(lambda: _answer_or_error(method, args, kwargs))

        coalescer = self._coalescers.get(method_name)

        def call(*args, **kwargs):
            bound = (self._grouped_admission.admit(self._wait_until, self._judged) if coalescer is not None
                     else self._admission.admit(self._wait_until))
            with bound:
                if coalescer is not None:
                    return self._call(lambda: coalescer.call(self._proxy, args, kwargs))
                return self._call(lambda: _answer_or_error(method, args, kwargs))

        return call

    def _call(self, run):
        answer, error = _within_deadline(self._timeout, self._service_name, run)
        if error is not None:
            raise error
        return answer


def _within_deadline(seconds: float, service_name: str, run) -> tuple:
    """`run()`'s (answer, error), or (None, Unavailable) after `seconds`. The call
    runs in a green thread of its own, and the caller waits for it only until the
    deadline. Waiting in place is not enough: when the broker blocks publishers (a
    memory or disk alarm), the deadline interrupts the publish, but kombu then
    closes the pooled connection, and that close waits for the blocked broker with
    no deadline at all."""
    attempt = eventlet.spawn(run)
    try:
        with eventlet.Timeout(seconds):
            return attempt.wait()
    except eventlet.Timeout:
        attempt.kill()  # returns at once; a stuck close ends when the broker unblocks
        return None, Unavailable(f"The {service_name} service did not answer in time.")
    except BaseException:  # the caller gave up first (killed by a probe's shorter deadline): so does the call
        attempt.kill()
        raise


def _answer_or_error(method, args, kwargs):
    """(answer, None) or (None, the error), raised by the caller: an error raised
    out of a green thread is printed with its traceback, and a refusal (a 404, a
    400 from a service) is the client's doing, not a fault to log."""
    try:
        return method.call_async(*args, **kwargs).result(), None
    except Exception as exc:
        return None, exc


class ServiceRpc(RpcProxy):
    """Like RpcProxy, but every call gives up after RPC_TIMEOUT seconds, and at
    most MAX_IN_FLIGHT_PER_SERVICE calls to the service are in flight from this
    process (0: no bound), and MAX_IN_FLIGHT_GROUPED of each coalesced write
    besides; one more waits only as Admission judges (measured
    on this service's calls), within what is left of the request's
    ADMISSION_DEADLINE after its wait in the gateway. Every
    call carries the gateway's signed assertion, valid a little past the deadline."""

    def setup(self):
        super().setup()
        config = self.container.config
        self.timeout = float(linli_config.setting(config, "RPC_TIMEOUT"))
        self.admission = admission(config, int(config["MAX_IN_FLIGHT_PER_SERVICE"]), self.target_service)
        self.signer = caller.signer_from_config(config, lifetime=self.timeout + caller.LIFETIME_MARGIN)
        self.coalescers = {method: Coalescer(self.target_service, method, self.timeout)
                           for method in COALESCED.get(self.target_service, ())}
        # Not counted with the service's other calls: it works on a whole batch of these with one worker.
        self.grouped_admission = admission(config, int(config["MAX_IN_FLIGHT_GROUPED"]), self.target_service)

    def get_dependency(self, worker_ctx):
        proxy = caller.VouchedServiceProxy(worker_ctx, self.target_service, self.rpc_reply_listener, self.signer,
                                           **self.options)
        # An API request's worker has the request as its first argument (ApiEntrypoint).
        request = worker_ctx.args[0] if worker_ctx.args else None
        return _DeadlineProxy(proxy, self.target_service, self.timeout, self.admission,
                              getattr(request, "wait_until", None), self.coalescers, self.grouped_admission,
                              getattr(request, "write_judged", None) == self.target_service)
