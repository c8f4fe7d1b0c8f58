"""Each service its own broker user, allowed only its own queues and the
exchanges it uses, and on `nameko-rpc` only its own routing keys: a service
cannot read another's RPC or event queue, nor bind a queue of its own to
`nameko-rpc` to watch others' calls.

What nameko 2.14 and Linli declare and use, per service S:
- `rpc-S`, bound to the topic exchange `nameko-rpc` with `S.*`; replies
  published to `nameko-rpc` with the caller's reply key (a uuid);
- the gateway's reply queues `rpc.reply-gateway-<uuid>`, bound with `<uuid>`,
  and its calls published with `<service>.<method>`;
- `S.events` (topic), where S's outbox relay publishes, declaring first the
  queues of S's events (`evt-S-<type>--<consumer>.<handler>` and `.dlq`);
- S's handler queues `evt-<source>-<type>--S.<handler>` and `.dlq`, bound to
  `<source>.events`; retries and dead letters go to them by name through S's
  own direct exchange `S.redeliveries`, never the default exchange (which
  would let S publish into any queue: another's RPC or event queue);
- the gateway's own `rpc-gateway` (it answers `ping`), like any service's;
- the gateway's feed queue `gateway-feed-<hex>` bound to every `<source>.events`
  with `#` (while a feed stream is open), and its broadcast queue for alerts.

RabbitMQ checks: declare (and delete) needs configure; queue.bind write on the
queue and read on the exchange; publish write on the exchange; consume and get
read on the queue; and, on a topic exchange with topic permissions, the
routing key of a publish against `write` and of a queue.bind against `read`.
"""
from __future__ import annotations

import json
import os
import re
import secrets
from pathlib import Path
from urllib.parse import quote, unquote, urlparse, urlunparse

import requests

from services import contracts
from services.common import broker
from services.contracts import SUBSCRIPTIONS

RPC_EXCHANGE = "nameko-rpc"
BACKENDS = ("patrol", "donations", "welfare", "notifications", "volunteers")
GATEWAY = "gateway"
USER_PREFIX = "linli-"
# nameko's reply routing keys: str(uuid4()).
REPLY_KEY = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
NOTHING = "^$"


def _any(*patterns: str) -> str:
    return "^(" + "|".join(patterns) + ")$" if patterns else NOTHING


def _events(source: str) -> str:
    return re.escape(f"{source}.events")


def consumed_sources(service: str) -> list[str]:
    if service == GATEWAY:  # the feed hears every service; the alert streams, notifications
        return sorted(contracts.PRODUCERS)
    return sorted({sub.source for sub in SUBSCRIPTIONS if sub.consumer == service})


def permissions(service: str) -> dict[str, str]:
    """configure, write and read regexes of `service`'s user in its vhost."""
    own_queues = [f"rpc-{re.escape(service)}", rf"evt-[a-z_]+-[a-z_]+--{re.escape(service)}\..+"]
    if service == GATEWAY:
        own_queues += [rf"rpc\.reply-gateway-{REPLY_KEY}", "gateway-feed-[0-9a-f]+"]
    # Its outbox relay declares (and binds) the queues of its own events, so that
    # none is dropped before its consumer first starts; it cannot read them.
    its_events_queues = [rf"evt-{re.escape(service)}-[a-z_]+--.+"]
    consumed = [_events(source) for source in consumed_sources(service) if source != service]
    own_exchanges = [re.escape(RPC_EXCHANGE), _events(service)]
    if any(sub.consumer == service for sub in SUBSCRIPTIONS):  # retries and dead letters
        own_exchanges.append(re.escape(f"{service}.redeliveries"))
    return {
        "configure": _any(*own_queues, *its_events_queues, *own_exchanges, *consumed),
        "write": _any(*own_queues, *its_events_queues, *own_exchanges),
        "read": _any(*own_queues, *own_exchanges, *consumed),
    }


def topic_permissions(service: str) -> list[dict[str, str]]:
    """Routing keys `service` may publish (write) and bind (read) on topic exchanges."""
    own_calls = rf"{re.escape(service)}\.\*"
    if service == GATEWAY:  # calls the four services; answers only `ping` itself
        return [{"exchange": RPC_EXCHANGE, "read": _any(own_calls, REPLY_KEY),
                 "write": _any(rf"({'|'.join(BACKENDS)})\.[A-Za-z_][A-Za-z0-9_]*", REPLY_KEY)}]
    rules = [{"exchange": RPC_EXCHANGE, "read": _any(own_calls), "write": _any(REPLY_KEY)}]
    for source in consumed_sources(service):
        types = sorted({sub.event_type for sub in SUBSCRIPTIONS if sub.consumer == service and sub.source == source})
        rules.append({"exchange": f"{source}.events", "read": _any(*map(re.escape, types)), "write": NOTHING})
    return rules


def vhost_of(amqp_uri: str) -> str:
    path = urlparse(broker.first_uri(amqp_uri)).path
    return unquote(path[1:]) if len(path) > 1 else "/"


def username(service: str, vhost: str) -> str:
    # User names are global in RabbitMQ, permissions per vhost: one user per service and vhost.
    return f"{USER_PREFIX}{service}@{vhost}"


def with_user(amqp_uri: str, user: str, password: str) -> str:
    """The same broker (every node of it) and vhost, as another user."""
    def one(uri: str) -> str:
        parsed = urlparse(uri)
        host = parsed.hostname or "localhost"
        if ":" in host:
            host = f"[{host}]"
        port = f":{parsed.port}" if parsed.port else ""
        netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}{port}"
        return urlunparse(parsed._replace(netloc=netloc))
    return broker.each_uri(amqp_uri, one)


class Management:
    """RabbitMQ's management API as the operator's (administrator) user of AMQP_URI."""

    def __init__(self, amqp_uri: str, url: str | None = None, verify: str | bool = True):
        parsed = urlparse(broker.first_uri(amqp_uri))  # any node's API manages the whole cluster
        self.auth = (unquote(parsed.username or "guest"), unquote(parsed.password or "guest"))
        self.url = (url or f"http://{parsed.hostname or 'localhost'}:15672").rstrip("/")
        self.verify = verify

    def _call(self, method: str, path: str, **kwargs) -> requests.Response:
        answer = requests.request(method, self.url + "/api/" + path, auth=self.auth, timeout=10,
                                  verify=self.verify, **kwargs)
        if not (method == "DELETE" and answer.status_code == 404):  # deleting what is not there is fine
            answer.raise_for_status()
        return answer

    def put_user(self, name: str, password: str):
        self._call("PUT", f"users/{quote(name, safe='')}", json={"password": password, "tags": ""})

    def set_permissions(self, vhost: str, name: str, rules: dict[str, str]):
        self._call("PUT", f"permissions/{quote(vhost, safe='')}/{quote(name, safe='')}", json=rules)

    def set_topic_permissions(self, vhost: str, name: str, rules: list[dict[str, str]]):
        path = f"topic-permissions/{quote(vhost, safe='')}/{quote(name, safe='')}"
        self._call("DELETE", path)  # none left over from an older version of the rules
        for rule in rules:
            self._call("PUT", path, json=rule)

    def close_connections(self, name: str):
        """Close every connection this user has open (a password change alone keeps them)."""
        self._call("DELETE", f"connections/username/{quote(name, safe='')}")

    def users_of(self, vhost: str) -> list[str]:
        answer = requests.get(f"{self.url}/api/vhosts/{quote(vhost, safe='')}/permissions", auth=self.auth,
                              timeout=10, verify=self.verify)
        if answer.status_code == 404:  # no such vhost (any more)
            return []
        answer.raise_for_status()
        return [entry["user"] for entry in answer.json()]

    def delete_user(self, name: str):
        self._call("DELETE", f"users/{quote(name, safe='')}")


def _passwords(path: Path) -> dict[str, str]:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}


def password_variable(service: str) -> str:
    return f"LINLI_{service.upper()}_BROKER_PASSWORD"


def known_uri(amqp_uri: str, service: str, passwords_file: Path) -> str | None:
    """The service's AMQP_URI as its own user, whose password `ensure` kept;
    None if it has not made that user yet."""
    password = _passwords(passwords_file).get(username(service, vhost_of(amqp_uri)))
    return with_user(amqp_uri, username(service, vhost_of(amqp_uri)), password) if password else None


def ensure(management: Management, amqp_uri: str, services, passwords_file: Path,
           env: dict | None = None, rotate: bool = False) -> dict[str, str]:
    """Make (or bring up to date) each service's user for AMQP_URI's vhost, with
    its permissions. Passwords: LINLI_<SERVICE>_BROKER_PASSWORD from `env` where
    given (deploy/docker-compose.yml), else random; kept in `passwords_file`
    (0600) and reused. `rotate`: new random ones (where `env` gives none), and
    whatever connections the users still had are closed. Returns each service's AMQP_URI."""
    vhost = vhost_of(amqp_uri)
    passwords = _passwords(passwords_file)
    uris = {}
    for service in services:
        name = username(service, vhost)
        if rotate:
            passwords.pop(name, None)
        if (env or {}).get(password_variable(service)):
            passwords[name] = env[password_variable(service)]
        password = passwords.setdefault(name, secrets.token_urlsafe(24))
        management.put_user(name, password)
        management.set_permissions(vhost, name, permissions(service))
        management.set_topic_permissions(vhost, name, topic_permissions(service))
        uris[service] = with_user(amqp_uri, name, password)
    descriptor = os.open(passwords_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        json.dump(passwords, out, indent=1)
    os.chmod(passwords_file, 0o600)
    if rotate:
        for service in services:
            management.close_connections(username(service, vhost))
    return uris


def remove(management: Management, vhost: str):
    """Delete the users made for `vhost` (before the vhost itself goes)."""
    for name in management.users_of(vhost):
        if name.startswith(USER_PREFIX) and name.endswith(f"@{vhost}"):
            management.delete_user(name)
