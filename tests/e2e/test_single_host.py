"""deploy/single-host/ as it runs: `linli prepare`, then each service as its
own `linli serve SERVICE` process (what systemd's units run), and Debian's
nginx with deploy/single-host/nginx-linli.conf in front, on free ports, with a
certificate from a throwaway CA. What a user sees: HTTPS only, a login, the
live feed as it happens, and the gateway's per-address limits on the client
(through X-Forwarded-For), not on the proxy.

The HTTPS client is curl: TLS from this (eventlet-patched) test process
recurses without end (eventlet/eventlet#726), and curl is what a user has."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import types

import pytest
import requests

from services.ops.stack import GATEWAY_ONLY, SERVICES
from tests import proxy
from tests.conftest import wait_for
from tests.e2e.conftest import ADMIN_PASSWORD, free_port, linli, running_stack

# Its own stack takes 40 s or more to start on a busy machine: `make test-slow`.
pytestmark = [pytest.mark.slow, pytest.mark.transport]

ADDRESS_MAX_FAILURES = 3


@pytest.fixture(scope="module")
def office(module_vhost, tmp_path_factory):
    proxy.require_nginx()
    folder = tmp_path_factory.mktemp("single-host")
    var = folder / "var"
    # Prepared (migrations, queues, broker users, the first admin); no process started.
    with running_stack(module_vhost, var, start=False, LINLI_TRUSTED_PROXIES="127.0.0.1",
                       LINLI_LOGIN_ADDRESS_MAX_FAILURES=str(ADDRESS_MAX_FAILURES)) as stack:
        # What systemd's EnvironmentFile gives: the settings, no secrets (those are in var/).
        env = {k: v for k, v in stack.env.items() if k not in GATEWAY_ONLY + ("LINLI_CALLER_PUBLIC_KEY",)}
        prepared = linli(env, "--var", str(var), "prepare", "--wait", "30")  # linli-prepare.service, again
        assert prepared.returncode == 0, prepared.stderr
        assert "prepared" in prepared.stdout
        served = {}
        for service in SERVICES:
            log = open(var / "log" / f"serve-{service}.log", "ab")  # noqa: SIM115 (closed below)
            served[service] = (subprocess.Popen(
                [sys.executable, "-m", "services.ops.cli", "--var", str(var), "serve", service, "--metrics-port",
                 "0"], env=env, cwd=var, stdout=log, stderr=subprocess.STDOUT), log)
        nginx_dir = folder / "nginx"
        nginx_dir.mkdir()
        ca, cert, key = proxy.make_certificate(nginx_dir)
        http_port, https_port = free_port(), free_port()
        site = proxy.site_for_test(proxy.SINGLE_HOST_SITE, nginx_dir, cert=cert, key=key, http_port=http_port,
                                   https_port=https_port, gateway=f"127.0.0.1:{stack.port}")
        main = proxy.main_for_test(nginx_dir, site)
        try:
            with proxy.running(main, https_port):
                def ready():
                    dead = [s for s, (process, _log) in served.items() if process.poll() is not None]
                    assert not dead, f"exited: {dead}; see {var / 'log'}"
                    try:
                        return requests.get(stack.url + "/api/v1/ready", timeout=5).status_code == 200
                    except requests.RequestException:
                        return False

                wait_for(ready, timeout=90, interval=0.5, what="the stack ready")
                yield types.SimpleNamespace(stack=stack, var=var, https=f"https://127.0.0.1:{https_port}",
                                            http=f"http://127.0.0.1:{http_port}", ca=str(ca), served=served,
                                            nginx_dir=nginx_dir)
        finally:
            for process, _log in served.values():
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process, log in served.values():
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
                log.close()


class Answer(types.SimpleNamespace):
    def json(self):
        return json.loads(self.body)


def curl(url: str, *args: str, ca: str | None = None, source: str = "127.0.0.1", body: dict | None = None,
         token: str | None = None) -> Answer:
    """One request as curl makes it, from `source` (all of 127/8 is this
    machine: clients the proxy tells apart), checked against `ca`."""
    command = [proxy.CURL, "--silent", "--show-error", "--max-time", "20", "--interface", source,
               "--dump-header", "-", *(["--cacert", ca] if ca else [])]
    if body is not None:
        command += ["--header", "Content-Type: application/json", "--data-binary", json.dumps(body)]
    if token:
        command += ["--header", f"Authorization: Bearer {token}"]
    result = subprocess.run([*command, *args, url], capture_output=True, timeout=30)
    if result.returncode:
        return Answer(exit=result.returncode, error=result.stderr.decode(), status=None, headers={}, body="")
    head, _, body_text = result.stdout.decode().partition("\r\n\r\n")
    lines = head.split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    return Answer(exit=0, error="", status=int(lines[0].split()[1]), protocol=lines[0].split()[0],
                  headers=headers, body=body_text)


def token_of(office, source: str = "127.0.0.1") -> str:
    answer = curl(office.https + "/api/v1/auth/token", ca=office.ca, source=source,
                  body={"username": "admin", "password": ADMIN_PASSWORD})
    assert answer.status == 200, answer
    return answer.json()["access_token"]


def test_each_service_runs_as_linli_serve_made_it_nameko_with_its_own_environment(office):
    for service, (process, _log) in office.served.items():
        with open(f"/proc/{process.pid}/cmdline", "rb") as cmdline:
            argv = cmdline.read().split(b"\0")
        assert b"nameko" in argv and b"run" in argv  # serve exec'd nameko in its place: systemd's main process
        with open(f"/proc/{process.pid}/environ", "rb") as environ:
            env = dict(line.split(b"=", 1) for line in environ.read().split(b"\0") if b"=" in line)
        assert env[b"AMQP_URI"].startswith(f"amqp://linli-{service}%40".encode())
        assert all((name.encode() in env) == (service == "gateway") for name in GATEWAY_ONLY)


def test_https_answers_with_the_offices_certificate_and_hsts(office):
    answer = curl(office.https + "/api/v1/ready", ca=office.ca)
    assert answer.status == 200, answer
    assert answer.protocol == "HTTP/2"
    assert answer.headers["strict-transport-security"] == "max-age=63072000"
    # The certificate is what is checked: not trusted without the office's CA.
    untrusted = curl(office.https + "/api/v1/ready")
    assert untrusted.exit == 60, untrusted  # curl: "SSL certificate problem"
    # TLS 1.1 and older are refused.
    old = curl(office.https + "/api/v1/ready", "--tlsv1.1", "--tls-max", "1.1", "--ciphers", "DEFAULT@SECLEVEL=0",
               ca=office.ca)
    assert old.exit != 0 and old.status is None, old


def test_plain_http_is_sent_to_https(office):
    answer = curl(office.http + "/api/v1/ready?check=1")
    assert answer.status == 301
    assert answer.headers["location"] == "https://127.0.0.1/api/v1/ready?check=1"
    # Nothing is served over plain HTTP, not even a login.
    login = curl(office.http + "/api/v1/auth/token", body={"username": "admin", "password": ADMIN_PASSWORD})
    assert login.status == 301 and "access_token" not in login.body


def test_a_login_over_https_then_the_api(office):
    me = curl(office.https + "/api/v1/me", ca=office.ca, token=token_of(office))
    assert me.status == 200 and me.json()["username"] == "admin"


def test_a_body_over_the_gateways_limit_gets_the_gateways_error_from_the_proxy(office, tmp_path):
    large, under = tmp_path / "large", tmp_path / "under"
    large.write_bytes(b"x" * (300 * 1024))
    under.write_bytes(b"x" * (200 * 1024))
    url = office.https + "/api/v1/auth/token"
    answer = curl(url, "--header", "Content-Type: application/json", "--data-binary", f"@{large}", ca=office.ca)
    assert answer.status == 413 and answer.json()["error"]["code"] == "payload_too_large"
    # Under the limit, the gateway judges it.
    answer = curl(url, "--header", "Content-Type: application/json", "--data-binary", f"@{under}", ca=office.ca)
    assert answer.status == 400 and answer.json()["error"]["code"] != "payload_too_large"


def test_the_per_address_login_limit_sees_the_client_not_the_proxy(office):
    """Behind the proxy every request comes from 127.0.0.1; with
    LINLI_TRUSTED_PROXIES=127.0.0.1 the gateway counts the client's address
    from X-Forwarded-For, and what a client writes there itself is not believed."""
    url = office.https + "/api/v1/auth/token"
    for attempt in range(ADDRESS_MAX_FAILURES):
        answer = curl(url, ca=office.ca, source="127.0.0.2",
                      body={"username": f"nobody-{attempt}", "password": "wrong-password"})
        assert answer.status == 401, answer
    wrong = {"username": "nobody-else", "password": "wrong-password"}
    refused = curl(url, ca=office.ca, source="127.0.0.2", body=wrong)
    assert refused.status == 429 and "retry-after" in refused.headers
    # Claiming to be someone else does not help.
    forged = curl(url, "--header", "X-Forwarded-For: 10.9.8.7", ca=office.ca, source="127.0.0.2", body=wrong)
    assert forged.status == 429
    # Another client, through the same proxy, is not held up.
    assert token_of(office, source="127.0.0.3")


def test_the_live_feed_arrives_through_the_proxy_as_it_happens(office):
    token = token_of(office, source="127.0.0.4")
    # As a browser's EventSource opens it: the token in the query string.
    stream = subprocess.Popen([proxy.CURL, "--silent", "--no-buffer", "--cacert", office.ca,
                               office.https + f"/api/v1/events/stream?source=patrol&access_token={token}"],
                              stdout=subprocess.PIPE, text=True)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(iter(stream.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        wait_for(lambda: ": connected" in "".join(lines), timeout=10, what="the stream's first comment")
        created = curl(office.https + "/api/v1/zones", ca=office.ca, token=token,
                       body={"name": "Proxy zone", "compounds": ["Proxy"]})
        assert created.status == 201, created
        sent = time.monotonic()
        wait_for(lambda: '"zone_created"' in "".join(lines), timeout=10, what="the event through nginx")
        print(f"zone_created through nginx {time.monotonic() - sent:.2f} s after the answer")
    finally:
        stream.terminate()
        stream.wait(timeout=10)
    # nginx's log has the path, never the token in the query string (written once nginx has seen
    # the client go, a moment after curl is stopped).
    access_log = office.nginx_dir / "linli-access.log"

    def logged_stream() -> str | None:
        text = access_log.read_text()
        return text if "GET /api/v1/events/stream HTTP/2.0" in text else None

    log = wait_for(logged_stream, timeout=10, what="the stream's line in nginx's access log")
    assert token not in log and "access_token" not in log


def test_the_gateway_down_is_the_apis_503_not_nginxs_page(office):
    """Last: it stops the gateway."""
    gateway, _log = office.served["gateway"]
    gateway.send_signal(signal.SIGTERM)
    gateway.wait(timeout=20)
    answer = curl(office.https + "/api/v1/ready", ca=office.ca)
    assert answer.status == 503, answer
    assert answer.json()["error"]["code"] == "unavailable"
    assert answer.headers["retry-after"] == "5"
    assert answer.headers["strict-transport-security"] == "max-age=63072000"
