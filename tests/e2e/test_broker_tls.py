"""The whole stack over TLS to the broker (`amqps://`), each service as its own
broker user, on a private RabbitMQ node with a TLS listener whose certificate a
throwaway CA signed: every connection checks it against that CA."""
import json
import subprocess
import sys
import types

import pytest
from kombu.exceptions import OperationalError

from services.common import broker
from tests.broker_node import BrokerNode
from tests.conftest import wait_for
from tests.e2e.conftest import ADMIN_PASSWORD, linli, login, open_case, running_stack

# Minutes of broker restarts, alarms, TLS nodes, killed instances or fuzzing: `make test-slow`.
pytestmark = [pytest.mark.slow, pytest.mark.transport]


def openssl(*args: str, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(folder, name: str):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
            "-keyout", f"{name}.key", "-out", f"{name}.pem", cwd=folder)
    return folder / f"{name}.pem"


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    """A CA, the broker's certificate for 127.0.0.1 and localhost signed by it, and another CA."""
    folder = tmp_path_factory.mktemp("tls")
    ca = make_ca(folder, "linli-test-ca")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", "broker.key", "-out", "broker.csr", cwd=folder)
    (folder / "san.ext").write_text("subjectAltName = IP:127.0.0.1, DNS:localhost\n")
    openssl("x509", "-req", "-in", "broker.csr", "-CA", "linli-test-ca.pem", "-CAkey", "linli-test-ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "broker.pem", cwd=folder)
    return types.SimpleNamespace(ca=ca, cert=folder / "broker.pem", key=folder / "broker.key",
                                 other_ca=make_ca(folder, "someone-else"))


@pytest.fixture(scope="module")
def tls_node(certificates):
    node = BrokerNode("tls", tls=(certificates.ca, certificates.cert, certificates.key), management=True).start()
    yield node
    node.remove()


def test_the_stack_runs_over_tls_verifying_the_brokers_certificate(tls_node, certificates, tmp_path):
    over_tls = types.SimpleNamespace(amqp_uri=tls_node.amqps_uri, management_url=tls_node.management_url)
    with running_stack(over_tls, tmp_path / "var", LINLI_AMQP_CA_FILE=str(certificates.ca)) as stack:
        # The first path end to end: a case opened through the gateway alerts its member.
        admin_client = login(stack.url, "admin", ADMIN_PASSWORD)
        registered = admin_client.post("/members", {"username": "wang.tls", "password": "member-password",
                                                    "name": "王芳", "roles": ["member"], "party_member": True})
        assert registered.status_code == 201, registered.text
        member, member_client = registered.json(), login(stack.url, "wang.tls", "member-password")
        case = open_case(admin_client, member["id"])
        alerts = wait_for(lambda: [alert for alert in member_client.get("/me/alerts").json()["items"]
                                   if alert["ref"] == {"type": "case", "id": case["id"]}],
                          timeout=15, what="the case's alert")
        assert len(alerts) == 1

        # Every service process is connected over TLS, each as its own user.
        connections = json.loads(tls_node.ctl("list_connections", "user", "ssl", "--formatter", "json").stdout)
        users = {connection["user"]: connection["ssl"] for connection in connections}
        for service in ("patrol", "donations", "welfare", "notifications", "volunteers", "gateway"):
            assert users.get(f"linli-{service}@/") is True, (service, users)
        assert all(connection["ssl"] for connection in connections), connections

        # The operator's commands too (kombu and pika), with the same settings.
        env = stack.env | {"AMQP_URI": tls_node.amqps_uri}
        listed = linli(env, "dlq", "list", "--json")
        assert listed.returncode == 0 and listed.stdout == "", listed.stderr
        tail = subprocess.Popen([sys.executable, "-m", "services.ops.cli", "events", "tail", "--json", "--count", "1"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: any(c["user"] == "guest" and c["ssl"] for c in json.loads(
                tls_node.ctl("list_connections", "user", "ssl", "--formatter", "json").stdout)),
                timeout=20, what="the tail's connection")
            open_case(admin_client, member["id"])
            out, err = tail.communicate(timeout=30)
        finally:
            tail.kill()
        assert tail.returncode == 0, err
        assert json.loads(out)["source"] in ("welfare", "notifications")


def test_a_broker_certificate_from_another_ca_is_refused(tls_node, certificates):
    trusted = {"AMQP_URI": tls_node.amqps_uri,
               "AMQP_SSL": {"ca_certs": str(certificates.ca), "cert_reqs": 2, "server_hostname": None}}
    with broker.connection(trusted) as connection:
        connection.ensure_connection(max_retries=1)
    untrusted = trusted | {"AMQP_SSL": trusted["AMQP_SSL"] | {"ca_certs": str(certificates.other_ca)}}
    with pytest.raises((OperationalError, OSError)) as refused:
        with broker.connection(untrusted) as connection:
            connection.ensure_connection(max_retries=1)
    assert "CERTIFICATE_VERIFY_FAILED" in str(refused.value)
