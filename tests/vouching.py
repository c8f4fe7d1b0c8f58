"""RPC calls straight to the services, vouched for as the gateway does
(services/common/caller.py): with the test key pair below, or a stack's own key."""
from __future__ import annotations

import contextlib

from services.common import caller

# One pair for the whole run; the integration tests put the public key in each
# service's config. A stack's own (tests/e2e) is in its env.
SIGNING_KEY, PUBLIC_KEY = caller.generate_key_pair()
DEFAULT_LIFETIME = 30.0


def with_caller_keys(config: dict) -> dict:
    """A service's config with the test public key (and the gateway's signing key)."""
    return config | {"CALLER_PUBLIC_KEY": PUBLIC_KEY, "CALLER_SIGNING_KEY": SIGNING_KEY}


def signer(signing_key: str | None = None, lifetime: float = DEFAULT_LIFETIME, clock=None) -> caller.Signer:
    key = caller.load_signing_key(signing_key or SIGNING_KEY)
    return caller.Signer(key, lifetime) if clock is None else caller.Signer(key, lifetime, clock)


@contextlib.contextmanager
def vouched_rpc(config: dict, service: str | None = None, *, timeout: float | None = None,
                signing_key: str | None = None, sign=None):
    """A nameko standalone proxy (to `service`, or the cluster) whose calls carry
    an assertion signed with `signing_key` (default: the config's
    CALLER_SIGNING_KEY, else the test key), or made by `sign`."""
    lifetime = max(DEFAULT_LIFETIME, (timeout or 0) + caller.LIFETIME_MARGIN)
    sign = sign or signer(signing_key or config.get("CALLER_SIGNING_KEY"), lifetime=lifetime)
    proxy = (caller.VouchedClusterRpcProxy(config, sign, timeout=timeout) if service is None
             else caller.VouchedServiceRpcProxy(service, config, sign, timeout=timeout))
    with proxy as rpc:
        yield rpc
