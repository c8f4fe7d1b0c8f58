"""Each service's broker user, as `linli up` makes it, against the real broker:
what each service does is allowed, and one service cannot read another's
RPC or event queue, nor bind a queue to `nameko-rpc` to watch others' calls,
nor publish a call or another's event."""
import uuid

import pytest
from amqp.exceptions import AccessRefused
from kombu import Connection, Queue
from nameko.rpc import get_rpc_exchange
from nameko.standalone.events import get_event_exchange

from services import contracts
from services.common import events
from services.ops import brokerusers
from services.ops.stack import SERVICES
from tests.conftest import wait_for

RPC = get_rpc_exchange({})


@pytest.fixture(scope="module")
def users(module_vhost, tmp_path_factory):
    """Every service's AMQP_URI as its own user, and the queues as `linli up` leaves them."""
    events.declare_topology(module_vhost.amqp_uri, contracts.EVENTS)
    management = brokerusers.Management(module_vhost.amqp_uri, module_vhost.management_url)
    uris = brokerusers.ensure(management, module_vhost.amqp_uri, SERVICES,
                              tmp_path_factory.mktemp("var") / "broker-passwords.json")
    # Each service's RPC queue, declared by the service itself as nameko does.
    for service in SERVICES:
        with Connection(uris[service]) as connection:
            rpc_queue(service)(connection.channel()).declare()
    return uris


def rpc_queue(service: str, key: str | None = None) -> Queue:
    return Queue(f"rpc-{service}", exchange=RPC, routing_key=key or f"{service}.*", durable=True,
                 auto_delete=False, queue_arguments=events.durable_queue_arguments(None))


def attempt(uri: str, action):
    """Run `action(channel)` on a fresh channel as that user: None, or the refusal."""
    with Connection(uri) as connection:
        channel = connection.channel()
        try:
            action(channel)
        except AccessRefused as refused:
            return refused
        finally:
            if channel.is_open:
                channel.close()
    return None


def consume(queue_name: str):
    return lambda channel: channel.basic_consume(queue_name, callback=lambda message: None)


def declare(queue_name: str, **options):
    return lambda channel: channel.queue_declare(queue_name, **options)


def bind(queue_name: str, exchange: str, key: str):
    return lambda channel: channel.queue_bind(queue_name, exchange, key)


def test_a_service_cannot_consume_another_services_rpc_queue(users):
    assert attempt(users["welfare"], consume("rpc-welfare")) is None
    for service in ("patrol", "donations", "notifications", "gateway"):
        refused = attempt(users[service], consume("rpc-welfare"))
        assert refused is not None and refused.reply_code == 403, service
        assert "rpc-welfare" in refused.reply_text
    assert attempt(users["patrol"], lambda channel: channel.basic_get("rpc-welfare")) is not None


def test_no_service_can_bind_a_queue_to_nameko_rpc_to_see_others_calls(users):
    for key in ("#", "welfare.*", "*.*", "welfare.get_household"):
        # Its own RPC queue, with someone else's keys: the topic permission refuses the binding.
        refused = attempt(users["patrol"], bind("rpc-patrol", "nameko-rpc", key))
        assert refused is not None and refused.reply_code == 403, key
        # The gateway's reply queue takes only reply keys (uuids).
        reply_queue = f"rpc.reply-gateway-{uuid.uuid4()}"
        declared = attempt(users["gateway"], declare(reply_queue, auto_delete=True))
        assert declared is None
        refused = attempt(users["gateway"], bind(reply_queue, "nameko-rpc", key))
        assert refused is not None and refused.reply_code == 403, key
    # Nor a queue of another name (configure), nor the broker's own names.
    for queue_name in ("spy", "rpc-welfare-copy", ""):
        assert attempt(users["patrol"], declare(queue_name, exclusive=True)) is not None
    # What nameko itself binds is allowed.
    assert attempt(users["patrol"], bind("rpc-patrol", "nameko-rpc", "patrol.*")) is None
    reply_key = str(uuid.uuid4())
    reply_queue = f"rpc.reply-gateway-{reply_key}"
    assert attempt(users["gateway"], declare(reply_queue, auto_delete=True)) is None
    assert attempt(users["gateway"], bind(reply_queue, "nameko-rpc", reply_key)) is None


def test_a_service_cannot_read_another_services_event_queues(users):
    notifications_queue = "evt-welfare-case_opened--notifications.on_case_opened"
    assert attempt(users["notifications"], consume(notifications_queue)) is None
    assert attempt(users["notifications"], consume(notifications_queue + ".dlq")) is None
    for service in ("patrol", "donations", "welfare", "volunteers", "gateway"):
        for queue_name in (notifications_queue, notifications_queue + ".dlq"):
            refused = attempt(users[service], consume(queue_name))
            assert refused is not None and refused.reply_code == 403, (service, queue_name)
    # The producer declares its events' queues (so nothing is dropped before the consumer starts), but cannot read them.
    welfare_handler_queue = "evt-patrol-incident_reported--welfare.on_incident_reported"
    events.declare_topology(users["patrol"], contracts.EVENTS, sources=["patrol"])
    assert attempt(users["patrol"], consume(welfare_handler_queue)) is not None
    assert attempt(users["welfare"], consume(welfare_handler_queue)) is None
    # A consumer binds only the event types it subscribes to.
    refused = attempt(users["welfare"], bind("evt-patrol-incident_reported--welfare.on_incident_reported",
                                             "patrol.events", "#"))
    assert refused is not None and refused.reply_code == 403


def test_a_service_cannot_publish_calls_or_another_services_events(users):
    def publish(exchange: str, key: str):
        def action(channel):
            channel.confirm_select()
            channel.basic_publish_confirm(channel.prepare_message(b"{}"), exchange=exchange, routing_key=key)
        return action

    # A backend answers calls (reply keys) and makes none.
    assert attempt(users["patrol"], publish("nameko-rpc", str(uuid.uuid4()))) is None
    refused = attempt(users["patrol"], publish("nameko-rpc", "welfare.get_household"))
    assert refused is not None and refused.reply_code == 403
    # The gateway calls the four services, nothing else.
    assert attempt(users["gateway"], publish("nameko-rpc", "welfare.ping")) is None
    assert attempt(users["gateway"], publish("nameko-rpc", "gateway.ping")) is not None
    # Events: each service publishes on its own exchange only.
    assert attempt(users["patrol"], publish("patrol.events", "incident_reported")) is None
    for service in ("welfare", "donations", "notifications", "gateway"):
        refused = attempt(users[service], publish("patrol.events", "incident_reported"))
        assert refused is not None and refused.reply_code == 403, service


def test_what_each_service_does_is_allowed(users):
    """The gateway's feed and broadcast queues, dead-letter depths, and a retry by name."""
    feed = Queue(f"gateway-feed-{uuid.uuid4().hex}", exclusive=True, auto_delete=True, durable=False)
    with Connection(users["gateway"]) as connection:
        channel = connection.channel()
        feed(channel).declare()
        for source in ("patrol", "donations", "welfare", "notifications", "volunteers", "gateway"):
            get_event_exchange(source, {})(channel).declare()
            channel.queue_bind(feed.name, f"{source}.events", "#")
        alerts = Queue(f"evt-notifications-alert_created--gateway.on_alert_created-{uuid.uuid4().hex}",
                       exchange=get_event_exchange("notifications", {}), routing_key="alert_created",
                       exclusive=True, auto_delete=True)
        alerts(channel).declare()
        channel.basic_consume(alerts.name, callback=lambda message: None)
        # /metrics: every dead-letter queue's depth, passively.
        for sub_queue in ("evt-welfare-case_opened--notifications.on_case_opened.dlq",):
            channel.queue_declare(sub_queue, passive=True)
    # A retry or dead letter goes to its own queue through the consumer's own redelivery exchange.
    queue_name = "evt-welfare-case_opened--notifications.on_case_opened"
    with Connection(users["notifications"]) as connection:
        channel = connection.channel()
        sub = next(sub for sub in contracts.SUBSCRIPTIONS if events.queue_name(sub) == queue_name)
        for queue in (events.event_queue(sub), events.dead_letter_queue(sub)):
            events.redelivery_queue(queue, "notifications")(channel).declare()
        channel.confirm_select()
        channel.basic_publish_confirm(channel.prepare_message(b"{}"), exchange="notifications.redeliveries",
                                      routing_key=queue_name, mandatory=True)
        events.event_queue(sub)(channel).declare()


def test_no_service_can_publish_into_a_queue_by_name(users):
    """The default exchange reaches every queue: no service may publish there,
    nor through another's redelivery exchange, nor bind another's queue to its own."""
    def publish(exchange: str, key: str):
        def action(channel):
            channel.confirm_select()
            channel.basic_publish_confirm(channel.prepare_message(b"{}"), exchange=exchange, routing_key=key)
        return action

    welfare_queue = "evt-patrol-incident_reported--welfare.on_incident_reported"
    for service in SERVICES:
        for queue_name in ("rpc-welfare", welfare_queue):
            refused = attempt(users[service], publish("", queue_name))
            assert refused is not None and refused.reply_code == 403, (service, queue_name)
    refused = attempt(users["notifications"], publish("welfare.redeliveries", welfare_queue))
    assert refused is not None and refused.reply_code == 403
    refused = attempt(users["notifications"], bind(welfare_queue, "notifications.redeliveries", welfare_queue))
    assert refused is not None and refused.reply_code == 403


def test_linli_broker_users_takes_given_passwords(vhost, tmp_path):
    """As deploy/docker-compose.yml's init does: each password from the environment."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, AMQP_URI=vhost.amqp_uri, LINLI_AMQP_MANAGEMENT_URL=vhost.management_url,
               LINLI_PATROL_BROKER_PASSWORD="given-by-the-operator-1")
    made = subprocess.run([sys.executable, "-m", "services.ops.cli", "--var", str(tmp_path / "var"), "broker-users"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    assert "given-by-the-operator-1" not in made.stdout + made.stderr
    patrol = brokerusers.with_user(vhost.amqp_uri, brokerusers.username("patrol", vhost.name),
                                   "given-by-the-operator-1")
    with Connection(patrol) as connection:
        connection.ensure_connection(max_retries=1)


def test_deleting_a_test_vhost_deletes_its_broker_users(request, tmp_path):
    import requests

    from services.ops.vhost import Vhost

    vhost = Vhost(request.config.getoption("RABBIT_AMQP_URI").replace("pyamqp://", "amqp://")).create()
    management = brokerusers.Management(vhost.amqp_uri, vhost.management_url)
    brokerusers.ensure(management, vhost.amqp_uri, SERVICES, tmp_path / "broker-passwords.json")
    names = [brokerusers.username(service, vhost.name) for service in SERVICES]
    assert sorted(n for n in management.users_of(vhost.name) if n.startswith("linli-")) == sorted(names)
    vhost.delete()
    for name in names:
        answer = requests.get(f"{vhost.management_url}/api/users/{name.replace('@', '%40')}", auth=management.auth,
                              timeout=10)
        assert answer.status_code == 404, name


def test_a_consumer_retries_and_dead_letters_as_its_own_user(start_service, service_config, vhost, tmp_path):
    """notifications, as its own broker user, with a handler that always fails
    (its database was never migrated): retried, then dead-lettered, nothing lost."""
    from nameko.amqp.publish import Publisher

    from services.common import deadletters
    from services.common.envelope import make_envelope
    from services.contracts import welfare as welfare_events
    from services.notifications.service import NotificationsService

    management = brokerusers.Management(vhost.amqp_uri, vhost.management_url)
    uris = brokerusers.ensure(management, vhost.amqp_uri, SERVICES, tmp_path / "broker-passwords.json")
    events.declare_topology(vhost.amqp_uri, contracts.EVENTS)  # as `linli up` does, as the operator
    config = service_config("notifications", migrate=False) | {"AMQP_URI": uris["notifications"]}
    start_service(NotificationsService, config)
    envelope = make_envelope("welfare", welfare_events.CASE_OPENED, {
        "case_id": "d" * 32, "household_id": "h" * 32, "compound": "Xingfu Garden", "categories": ["elderly"],
        "assignee_id": "b" * 32, "status": "open"})
    Publisher(uris["welfare"]).publish(envelope, exchange=get_event_exchange("welfare", {}),
                                       routing_key=envelope["type"])
    letters = wait_for(lambda: deadletters.list_dead_letters(vhost.amqp_uri, contracts.SUBSCRIPTIONS), timeout=20,
                       what="the dead letter")
    assert [(letter["event_id"], letter["attempts"]) for letter in letters] == [(envelope["id"], 3)]
    assert vhost.depth("evt-welfare-case_opened--notifications.on_case_opened") == 0


def test_rotating_gives_new_passwords_refuses_the_old_and_closes_what_was_open(vhost, tmp_path):
    """`linli broker-users --rotate`, after a password may have leaked: the old
    one no longer logs in, and a connection made with it is closed."""
    management = brokerusers.Management(vhost.amqp_uri, vhost.management_url)
    passwords = tmp_path / "broker-passwords.json"
    old = brokerusers.ensure(management, vhost.amqp_uri, ["donations"], passwords)["donations"]
    held = Connection(old)
    held.connect()

    new = brokerusers.ensure(management, vhost.amqp_uri, ["donations"], passwords, rotate=True)["donations"]

    assert new != old and new.split("@")[0].split(":")[-1] in passwords.read_text()
    with pytest.raises(AccessRefused):
        Connection(old).connect()
    with Connection(new) as connection:
        connection.connect()

    def held_is_closed():
        try:
            held.drain_events(timeout=0.2)
        except TimeoutError:  # still open, nothing to read
            return False
        except Exception:  # the broker closed it
            return True
        return False
    wait_for(held_is_closed, timeout=10, what="the connection made with the old password closed")
    held.release()
