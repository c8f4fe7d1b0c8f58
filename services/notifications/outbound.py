"""What may leave the app through a webhook, and how: public addresses only
(checked on the address the name resolves to, once, and connected to as
checked), one HTTP attempt under a whole-request deadline and a response-size
cap, and the signatures a receiver verifies. The one home of these rules."""
from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import ipaddress
import secrets
import socket
import ssl
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, NamedTuple
from urllib.parse import urlsplit

import certifi
import eventlet
from standardwebhooks import Webhook as StandardWebhook

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
# (host, port) -> the addresses it resolves to, as strings; injectable so that tests control DNS.
Resolver = Callable[[str, int], list[str]]

SECRET_PREFIX = "whsec_"
SET_TIME_RESOLVE_SECONDS = 5
USER_AGENT = "linli-webhooks"


class Refused(Exception):
    """This URL or address may not be reached; the message says why, for the member."""


@dataclass(frozen=True)
class Policy:
    """The operator's rules and limits for webhooks: deploy/config/notifications.yml
    states them and their defaults (their one home), Policy.from_config reads them."""

    allow_http: bool
    # Hosts ("sms.internal") or host:port that may be reached whatever their address.
    allow_hosts: frozenset[str]
    per_receiver: int            # deliveries at once to one receiver (host:port), per process
    max_in_flight: int           # deliveries at once in all, per process
    deadline_seconds: float      # resolve, connect, send and receive, all of it
    max_response_bytes: int      # of a receiver's answer, at most this much is read

    @classmethod
    def from_config(cls, config: dict) -> "Policy":
        hosts = config.get("WEBHOOK_ALLOW_HOSTS") or ""
        if isinstance(hosts, str):
            hosts = hosts.split(",")
        return cls(
            allow_http=str(config["WEBHOOK_ALLOW_HTTP"]).lower() in ("true", "1", "yes"),
            allow_hosts=frozenset(canonical_host(str(host).strip()) for host in hosts if str(host).strip()),
            per_receiver=max(1, int(config["WEBHOOK_PER_RECEIVER"])),
            max_in_flight=max(1, int(config["WEBHOOK_MAX_IN_FLIGHT"])),
            deadline_seconds=float(config["WEBHOOK_DEADLINE_SECONDS"]),
            max_response_bytes=int(config["WEBHOOK_MAX_RESPONSE_BYTES"]),
        )

    def allowed_host(self, host: str, port: int) -> bool:
        return host in self.allow_hosts or f"{host}:{port}" in self.allow_hosts


class Target(NamedTuple):
    scheme: str
    host: str        # canonical: a lower-case name, or an address as ipaddress spells it
    port: int
    path: str        # with the query
    host_header: str

    @property
    def receiver(self) -> str:
        """Who a delivery goes to, for its share of the concurrency."""
        return f"{self.host}:{self.port}"


# -- addresses --------------------------------------------------------------------------

def literal_address(host: str) -> Address | None:
    """The address a host written as a number means, in any spelling a
    resolver would accept (127.0.0.1, 2130706433, 0x7f000001, 017700000001,
    127.1, ::1, ::ffff:127.0.0.1), or None for a name."""
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    # inet_aton takes the old BSD spellings (hex, octal, fewer parts): so do resolvers and browsers.
    if host and set(host.lower()) <= set("0123456789abcdefx."):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def canonical_host(host: str) -> str:
    host = host.strip().lower().rstrip(".")
    if host.startswith("[") and "]" in host:  # [::1]:8080 in an allow-list
        inner, _, rest = host[1:].partition("]")
        address = literal_address(inner)
        return f"{address}{rest}" if address else host
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit() and ":" not in name:
        address = literal_address(name)
        return f"{address if address else name}:{port}"
    address = literal_address(host)
    return str(address) if address else host


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, Teredo, NAT64), which is where it leads."""
    if address.ipv4_mapped:
        return address.ipv4_mapped
    if address.sixtofour:
        return address.sixtofour
    if address.teredo:
        return address.teredo[1]
    if address in ipaddress.IPv6Network("64:ff9b::/96"):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: Address) -> bool:
    """Whether an address is on the public internet: not loopback, private,
    link-local, shared (CGNAT), multicast, reserved, unspecified or for
    documentation, in IPv4 or IPv6, nor an IPv6 one that leads to such an IPv4."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return False
        if address.ipv4_mapped:  # it is that IPv4 address, whatever ipaddress says of ::ffff:0:0/96
            return is_public(address.ipv4_mapped)
        inner = _embedded_ipv4(address)
        if inner is not None and not is_public(inner):
            return False
    return (address.is_global and not address.is_multicast and not address.is_reserved
            and not address.is_loopback and not address.is_link_local and not address.is_unspecified
            and not address.is_private)


# -- URLs -------------------------------------------------------------------------------

def parse_url(url: str, policy: Policy) -> Target:
    """Where a webhook URL leads, or Refused: https (http only if the
    operator allows it), a host, no credentials."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise Refused("Not a URL with a valid host and port.")
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise Refused("A webhook URL is https://.")
    if scheme == "http" and not policy.allow_http:
        raise Refused("A webhook URL must be https:// (plain http is not allowed here).")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise Refused("A webhook URL may not carry credentials (user:password@).")
    if not parts.hostname:
        raise Refused("A webhook URL needs a host.")
    try:  # an international name travels (to the resolver, in Host and for TLS) in its ASCII form
        host = canonical_host(parts.hostname.encode("idna").decode("ascii"))
    except UnicodeError:
        raise Refused("The webhook URL's host is not a valid name.")
    port = port or (443 if scheme == "https" else 80)
    address = literal_address(host)
    shown = f"[{host}]" if isinstance(address, ipaddress.IPv6Address) else host
    default_port = (scheme, port) in (("https", 443), ("http", 80))
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(scheme, host, port, path, shown if default_port else f"{shown}:{port}")


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses of a name, as the operating system (green under eventlet) resolves it."""
    return [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def resolve_checked(target: Target, policy: Policy, resolver: Resolver) -> Address:
    """Resolve the host once and check what it resolved to: the address to
    connect to, or Refused. Every address must pass, not just the first,
    so that no answer the resolver gives can lead inside."""
    address = literal_address(target.host)
    if address is not None:
        addresses = [address]
    else:
        try:
            addresses = [ipaddress.ip_address(found) for found in resolver(target.host, target.port)]
        except (OSError, UnicodeError, ValueError):
            raise Refused("The webhook's host name does not resolve.")
        if not addresses:
            raise Refused("The webhook's host name does not resolve.")
    if policy.allowed_host(target.host, target.port):
        return addresses[0]
    if not all(is_public(found) for found in addresses):
        raise Refused("A webhook may reach public addresses only, not this one.")
    return addresses[0]


def check_url(url: str, policy: Policy, resolver: Resolver) -> Target:
    """When a member sets a webhook: the URL is well formed and its host
    resolves to public addresses (or is allow-listed) now. Checked again at
    every delivery."""
    target = parse_url(url, policy)
    try:
        # Within the gateway's wait for this call, whatever the resolver does.
        with eventlet.Timeout(min(policy.deadline_seconds, SET_TIME_RESOLVE_SECONDS)):
            resolve_checked(target, policy, resolver)
    except eventlet.Timeout:
        raise Refused("The webhook's host name does not resolve.")
    return target


# -- signatures -------------------------------------------------------------------------

def new_secret() -> str:
    """A Standard Webhooks secret: whsec_ and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def signing_key(secret: str) -> bytes:
    """The HMAC key of a stored secret. A whsec_ secret's key is its base64
    part, decoded; a secret made before Standard Webhooks (a plain string) is
    its own UTF-8 bytes, as it always was, so that its receivers' checks of
    X-Linli-Signature hold, and they verify webhook-signature with
    whsec_ + base64(that string)."""
    if secret.startswith(SECRET_PREFIX):
        return base64.b64decode(secret[len(SECRET_PREFIX):] + "==")
    return secret.encode()


def signed_headers(secret: str, delivery_id: str, body: bytes, now: datetime | None = None) -> dict[str, str]:
    """The headers of one attempt: Standard Webhooks (webhook-id is the
    delivery, the same on every retry; the timestamp is this attempt's), and
    the deprecated X-Linli-Signature of the body, for one more release."""
    key = signing_key(secret)
    now = now or datetime.now(timezone.utc)
    legacy = hmac.new(key, body, hashlib.sha256).hexdigest()
    return {
        "webhook-id": delivery_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": StandardWebhook(key).sign(delivery_id, now, body.decode()),
        "X-Linli-Signature": f"sha256={legacy}",  # deprecated: webhook-signature replaces it
        "X-Linli-Delivery": delivery_id,
    }


# -- one attempt ------------------------------------------------------------------------

class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """TLS to the address that was checked, with the URL's host name for SNI
    and for the certificate check."""

    def __init__(self, address: str, port: int, tls_name: str, context: ssl.SSLContext, timeout: float):
        super().__init__(address, port, context=context, timeout=timeout)
        self._tls_name = tls_name

    def connect(self):
        http.client.HTTPConnection.connect(self)
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self._tls_name)


def default_tls_context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=certifi.where())


def attempt(url: str, body: bytes, headers: dict[str, str], policy: Policy, resolver: Resolver,
            tls_context: ssl.SSLContext | None = None) -> str | None:
    """POST `body` to a webhook once: None when the receiver took it (2xx),
    else why not, in a few words. Resolving, connecting, sending and
    receiving all fall under `policy.deadline_seconds`; at most
    `policy.max_response_bytes` of the answer are read; a redirect is not
    followed (it is a failure)."""
    connection = None
    status = None
    try:
        with eventlet.Timeout(policy.deadline_seconds):
            target = parse_url(url, policy)
            address = resolve_checked(target, policy, resolver)
            if target.scheme == "https":
                connection = _PinnedHTTPSConnection(str(address), target.port, target.host,
                                                    tls_context or default_tls_context(), policy.deadline_seconds)
            else:
                connection = http.client.HTTPConnection(str(address), target.port, timeout=policy.deadline_seconds)
            connection.request("POST", target.path, body=body, headers={
                "Host": target.host_header, "Content-Type": "application/json", "User-Agent": USER_AGENT,
                **headers})
            response = connection.getresponse()
            status = response.status
            # What the receiver says beyond its status is not used: read a little, never all of it.
            response.read(policy.max_response_bytes)
    except Refused as refused:
        return f"refused: {refused}"[:200]
    except eventlet.Timeout:
        if status is None:
            return "Timeout"
    except (OSError, http.client.HTTPException, ValueError) as exc:
        if status is None:
            return type(exc).__name__
    finally:
        if connection is not None:
            connection.close()
    return None if 200 <= status < 300 else f"HTTP {status}"
