"""RPC to the other services with a deadline: nameko 2's proxy waits forever,
and a client must get a 503 instead. And with a bound on the calls in flight
to each service: past it, a call waits for a slot only if it can expect one
within the admission deadline, else it is refused at once with a 503 and
Retry-After (load shedding) rather than queued behind the service's backlog. And each call
vouched for (services/common/caller.py): the services refuse any other."""
from __future__ import annotations

import eventlet
from nameko.rpc import RpcProxy

from services.common import caller
from services.common import config as linli_config
from services.common.errors import Unavailable
from services.gateway.http import Admission, admission_deadline

# Probes are never shed: a busy service is still a ready one.
UNBOUNDED_METHODS = frozenset({"ping"})


class _DeadlineProxy:
    def __init__(self, proxy, service_name: str, timeout: float, admission: Admission,
                 wait_until: float | None = None):
        self._proxy = proxy
        self._service_name = service_name
        self._timeout = timeout
        self._admission = admission
        self._wait_until = wait_until  # the request's admission deadline, partly spent in the gateway's

    def __getattr__(self, method_name):
        method = getattr(self._proxy, method_name)

        if method_name in UNBOUNDED_METHODS:
            return lambda *args, **kwargs: self._call(method, args, kwargs)

        def call(*args, **kwargs):
            with self._admission.admit(self._wait_until):
                return self._call(method, args, kwargs)

        return call

    def _call(self, method, args, kwargs):
        # The call runs in a green thread of its own, and the caller waits for it
        # only until the deadline. Waiting in place is not enough: when the broker
        # blocks publishers (a memory or disk alarm), the deadline interrupts the
        # publish, but kombu then closes the pooled connection, and that close waits
        # for the blocked broker with no deadline at all.
        attempt = eventlet.spawn(_answer_or_error, method, args, kwargs)
        try:
            with eventlet.Timeout(self._timeout):
                answer, error = attempt.wait()
        except eventlet.Timeout:
            attempt.kill()  # returns at once; a stuck close ends when the broker unblocks
            raise Unavailable(f"The {self._service_name} service did not answer in time.")
        except BaseException:  # the caller gave up first (killed by a probe's shorter deadline): so does the call
            attempt.kill()
            raise
        if error is not None:
            raise error
        return answer


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
    process (0: no bound); one more waits only as Admission judges (measured
    on this service's calls), within what is left of the request's
    ADMISSION_DEADLINE after its wait in the gateway. Every
    call carries the gateway's signed assertion, valid a little past the deadline."""

    def setup(self):
        super().setup()
        config = self.container.config
        self.timeout = float(linli_config.setting(config, "RPC_TIMEOUT"))
        self.admission = Admission(int(config["MAX_IN_FLIGHT_PER_SERVICE"]), admission_deadline(config),
                                   self.target_service)
        self.signer = caller.signer_from_config(config, lifetime=self.timeout + caller.LIFETIME_MARGIN)

    def get_dependency(self, worker_ctx):
        proxy = caller.VouchedServiceProxy(worker_ctx, self.target_service, self.rpc_reply_listener, self.signer,
                                           **self.options)
        # An API request's worker has the request as its first argument (ApiEntrypoint).
        request = worker_ctx.args[0] if worker_ctx.args else None
        return _DeadlineProxy(proxy, self.target_service, self.timeout, self.admission,
                              getattr(request, "wait_until", None))
