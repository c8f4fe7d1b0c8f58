"""RPC to the other services with a deadline: nameko 2's proxy waits forever,
and a client must get a 503 instead."""
from __future__ import annotations

import eventlet
from nameko.rpc import RpcProxy

from services.common import config as linli_config
from services.common.errors import Unavailable


class _DeadlineProxy:
    def __init__(self, proxy, service_name: str, timeout: float):
        self._proxy = proxy
        self._service_name = service_name
        self._timeout = timeout

    def __getattr__(self, method_name):
        method = getattr(self._proxy, method_name)

        def call(*args, **kwargs):
            # The call runs in a green thread of its own, and the caller waits for it
            # only until the deadline. Waiting in place is not enough: when the broker
            # blocks publishers (a memory or disk alarm), the deadline interrupts the
            # publish, but kombu then closes the pooled connection, and that close waits
            # for the blocked broker with no deadline at all.
            attempt = eventlet.spawn(lambda: method.call_async(*args, **kwargs).result())
            try:
                with eventlet.Timeout(self._timeout):
                    return attempt.wait()
            except eventlet.Timeout:
                attempt.kill()  # returns at once; a stuck close ends when the broker unblocks
                raise Unavailable(f"The {self._service_name} service did not answer in time.")

        return call


class ServiceRpc(RpcProxy):
    """Like RpcProxy, but every call gives up after RPC_TIMEOUT seconds."""

    def get_dependency(self, worker_ctx):
        timeout = float(linli_config.setting(self.container.config, "RPC_TIMEOUT"))
        return _DeadlineProxy(super().get_dependency(worker_ctx), self.target_service, timeout)
