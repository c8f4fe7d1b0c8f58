"""Calls the gateway vouches for. The gateway signs each RPC call it makes with
an Ed25519 key only it holds: a short-lived assertion bound to the target
service, the method, a digest of the arguments (the caller's identity is one of
them) and a unique id. Every service checks it before any work, holding only
the public key, so that a message forged or replayed on the broker, or sent by
a compromised service, is refused. Both sides' code is here."""
from __future__ import annotations

import base64
import copy
import hashlib
import heapq
import json
import logging
import math
import re
import time
import uuid

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from kombu.utils import json as kombu_json
from nameko.exceptions import ConfigurationError
from nameko.extensions import SharedExtension
from nameko.rpc import MethodProxy, ServiceProxy
from nameko.standalone.rpc import ClusterProxy, ClusterRpcProxy, ServiceRpcProxy

from services.common import config as linli_config
from services.common.errors import CallerNotVouched

log = logging.getLogger(__name__)

# Outside nameko's `nameko.` prefix: the assertion is for this call only, and
# must not become context data that a worker would pass on with its own messages.
HEADER = "linli-caller"
ISSUER = "gateway"
ALGORITHM = "EdDSA"
# An assertion lives the gateway's RPC deadline and this much more: a request
# still queued after that is one the gateway gave up on (503), and its client
# retries with its Idempotency-Key.
LIFETIME_MARGIN = 5.0
CLOCK_LEEWAY = 2  # seconds the hosts' clocks may differ
REQUIRED_CLAIMS = ["iss", "aud", "method", "args", "jti", "iat", "exp"]


# -- the arguments' digest -------------------------------------------------------------

def args_digest(args, kwargs) -> str:
    """sha256 (base64url) of the arguments as the service will receive them.
    They go through kombu's JSON both ways first, so that what the gateway holds
    (tuples, datetimes, int keys) and what the service decoded hash alike."""
    received = kombu_json.loads(kombu_json.dumps([args, kwargs]))
    canonical = json.dumps(received, cls=kombu_json.JSONEncoder, sort_keys=True, separators=(",", ":"),
                           ensure_ascii=False)
    # A lone surrogate is valid in a JSON string and reaches the service as one.
    digest = hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


# -- keys ------------------------------------------------------------------------------

def _pem(value: str) -> bytes:
    """A PEM as configured; also on one line (an .env file) or with literal \\n."""
    value = value.strip().replace("\\n", "\n")
    one_line = re.fullmatch(r"(-----BEGIN [A-Z ]+-----)\s*([A-Za-z0-9+/=\s]+?)\s*(-----END [A-Z ]+-----)", value)
    if one_line and "\n" not in value:
        value = "\n".join(one_line.groups())
    return value.encode("ascii", "replace")


def generate_key_pair() -> tuple[str, str]:
    """(private key PEM, public key PEM), a new Ed25519 pair."""
    private = Ed25519PrivateKey.generate()
    private_pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()).decode()
    return private_pem, public_pem_of(private)


def public_pem_of(private: Ed25519PrivateKey) -> str:
    return private.public_key().public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def load_signing_key(pem: str | None) -> Ed25519PrivateKey:
    if not pem:
        raise ConfigurationError("CALLER_SIGNING_KEY (env LINLI_CALLER_SIGNING_KEY) is not set: the gateway "
                                 "signs every RPC call with it (an Ed25519 private key, PEM)")
    try:
        key = serialization.load_pem_private_key(_pem(pem), password=None)
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigurationError("CALLER_SIGNING_KEY (env LINLI_CALLER_SIGNING_KEY) is not an unencrypted "
                                 "Ed25519 private key in PEM")
    return key


def load_public_key(pem: str | None) -> Ed25519PublicKey:
    if not pem:
        raise ConfigurationError("CALLER_PUBLIC_KEY (env LINLI_CALLER_PUBLIC_KEY) is not set: without it a "
                                 "service cannot tell the calls the gateway vouched for from forged ones, "
                                 "and refuses to start")
    try:
        key = serialization.load_pem_public_key(_pem(pem))
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigurationError("CALLER_PUBLIC_KEY (env LINLI_CALLER_PUBLIC_KEY) is not an Ed25519 public key "
                                 "in PEM")
    return key


# -- signing (the gateway) ------------------------------------------------------------------

class Signer:
    """Makes the assertion of one call."""

    def __init__(self, private_key: Ed25519PrivateKey, lifetime: float, clock=time.time):
        self.private_key = private_key
        self.lifetime = lifetime
        self.clock = clock

    def vouch(self, service: str, method: str, args, kwargs) -> str:
        now = int(self.clock())
        return jwt.encode({"iss": ISSUER, "aud": service, "method": method, "args": args_digest(args, kwargs),
                           "jti": uuid.uuid4().hex, "iat": now, "exp": now + math.ceil(self.lifetime)},
                          self.private_key, algorithm=ALGORITHM)


def signer_from_config(config: dict, lifetime: float | None = None) -> Signer:
    """The gateway's signer; refuses a signing key that is not the pair of the
    public key the services hold (they would refuse every call)."""
    key = load_signing_key(config.get("CALLER_SIGNING_KEY"))
    if config.get("CALLER_PUBLIC_KEY") and _raw(key.public_key()) != _raw(
            load_public_key(config["CALLER_PUBLIC_KEY"])):
        raise ConfigurationError("CALLER_SIGNING_KEY is not the pair of CALLER_PUBLIC_KEY: "
                                 "the services would refuse every call")
    if lifetime is None:
        lifetime = float(linli_config.setting(config, "RPC_TIMEOUT")) + LIFETIME_MARGIN
    return Signer(key, lifetime)


def _raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


class VouchedMethodProxy(MethodProxy):
    """nameko's MethodProxy, with the call's assertion in a header of its own.
    One worker's calls may run at once (the dashboard's GreenPool), so the
    assertion goes on a copy made for the one call, never on shared context data."""

    def __init__(self, worker_ctx, service_name, method_name, reply_listener, signer: Signer, **options):
        self.signer = signer
        self.assertion = None
        super().__init__(worker_ctx, service_name, method_name, reply_listener, **options)

    def _call(self, *args, **kwargs):
        one_call = copy.copy(self)
        one_call.assertion = self.signer.vouch(self.service_name, self.method_name, args, kwargs)
        return MethodProxy._call(one_call, *args, **kwargs)

    def get_message_headers(self, worker_ctx):
        headers = super().get_message_headers(worker_ctx)
        headers[HEADER] = self.assertion
        return headers


class VouchedServiceProxy(ServiceProxy):
    def __init__(self, worker_ctx, service_name, reply_listener, signer: Signer, **options):
        self.signer = signer
        super().__init__(worker_ctx, service_name, reply_listener, **options)

    def __getattr__(self, name):
        return VouchedMethodProxy(self.worker_ctx, self.service_name, name, self.reply_listener, self.signer,
                                  **self.options)


class _VouchedClusterProxy(ClusterProxy):
    def __init__(self, worker_ctx, reply_listener, signer: Signer):
        super().__init__(worker_ctx, reply_listener)
        self._signer = signer

    def __getattr__(self, name):
        if name not in self._proxies:
            self._proxies[name] = VouchedServiceProxy(self._worker_ctx, name, self._reply_listener, self._signer)
        return self._proxies[name]


class VouchedServiceRpcProxy(ServiceRpcProxy):
    """nameko's standalone ServiceRpcProxy, vouching as the gateway does (for
    tools and tests that call a service directly, with the signing key)."""

    def __init__(self, service_name, config, signer: Signer, **kwargs):
        super().__init__(service_name, config, **kwargs)
        self._proxy = VouchedServiceProxy(self._worker_ctx, service_name, self._reply_listener, signer)


class VouchedClusterRpcProxy(ClusterRpcProxy):
    def __init__(self, config, signer: Signer, **kwargs):
        super().__init__(config, **kwargs)
        self._proxy = _VouchedClusterProxy(self._worker_ctx, self._reply_listener, signer)


# -- checking (every service) --------------------------------------------------------------

class Verifier:
    """Checks the assertion of each call to one service, and remembers the ids
    it accepted until they expire, so that none is good twice in this process."""

    def __init__(self, public_key: Ed25519PublicKey, service: str, clock=time.time):
        self.public_key = public_key
        self.service = service
        self.clock = clock
        self._seen: set[str] = set()
        self._expiries: list[tuple[float, str]] = []

    def check(self, assertion, method: str, args, kwargs, redelivered: bool = False) -> None:
        """Returns if the gateway vouched for exactly this call; else raises CallerNotVouched."""
        claims = self._claims(assertion)
        if claims["method"] != method:
            raise _refused("it is for another method")
        if claims["args"] != args_digest(args, kwargs):
            raise _refused("it is for other arguments")
        now = self.clock()
        self._forget_expired(now)
        jti = str(claims["jti"])
        # The broker delivers a message again when the first delivery was not
        # acked (a lost connection): the same call, not a replay. A copy
        # published again by anyone arrives as a first delivery.
        if jti in self._seen and not redelivered:
            raise _refused("it was used before")
        self._seen.add(jti)
        heapq.heappush(self._expiries, (float(claims["exp"]) + CLOCK_LEEWAY, jti))

    def _claims(self, assertion) -> dict:
        if isinstance(assertion, bytes):
            assertion = assertion.decode("ascii", "replace")
        if not assertion or not isinstance(assertion, str):
            raise _refused("the call carries no assertion")
        try:
            # The times are checked below, against this verifier's clock.
            claims = jwt.decode(assertion, self.public_key, algorithms=[ALGORITHM], audience=self.service,
                                issuer=ISSUER, options={"require": REQUIRED_CLAIMS, "verify_exp": False,
                                                        "verify_iat": False})
        except jwt.InvalidAudienceError:
            raise _refused("it is for another service")
        except jwt.InvalidSignatureError:
            raise _refused("its signature is not the gateway's")
        except jwt.InvalidTokenError as exc:
            raise _refused(f"it is malformed ({type(exc).__name__})")
        if not all(isinstance(claims[claim], (int, float)) for claim in ("iat", "exp")):
            raise _refused("it is malformed (times)")
        now = self.clock()
        if claims["exp"] + CLOCK_LEEWAY < now:
            raise _refused("it has expired")
        if claims["iat"] - CLOCK_LEEWAY > now:
            raise _refused("it is not valid yet")
        return claims

    def _forget_expired(self, now: float):
        while self._expiries and self._expiries[0][0] < now:
            _exp, jti = heapq.heappop(self._expiries)
            self._seen.discard(jti)


def _refused(reason: str) -> CallerNotVouched:
    return CallerNotVouched(f"The gateway did not vouch for this call: {reason}.", {"reason": reason})


class CallerCheck(SharedExtension):
    """One Verifier per service container (the Rpc entrypoints share it)."""

    verifier: Verifier

    def setup(self):
        config = self.container.config
        self.verifier = Verifier(load_public_key(config.get("CALLER_PUBLIC_KEY")), self.container.service_name)

    def check(self, message, method: str, args, kwargs):
        """The assertion the message carries, for exactly this call."""
        try:
            self.verifier.check((message.headers or {}).get(HEADER), method, args, kwargs,
                                redelivered=bool(message.delivery_info.get("redelivered")))
        except CallerNotVouched as exc:
            # Never the arguments: they hold personal data.
            log.warning("refused an RPC call to %s.%s: %s", self.container.service_name, method,
                        exc.details["reason"])
            raise
