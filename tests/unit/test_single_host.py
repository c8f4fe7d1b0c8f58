"""deploy/single-host/: the systemd units through `systemd-analyze verify`,
the nginx site (and compose's proxy) through `nginx -t` on Debian's own
nginx.conf, and `linli serve` giving a service exactly what `linli up` would.
The stack behind the proxy, over HTTPS: tests/e2e/test_single_host.py."""
from __future__ import annotations

import configparser
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from services.gateway.http import MAX_BODY_BYTES
from services.ops import brokerusers, cli
from services.ops.stack import BROKER_PASSWORDS, GATEWAY_ONLY, SERVICE_CLASSES, SERVICES, Stack
from tests import proxy

ROOT = Path(__file__).resolve().parents[2]
SINGLE_HOST = ROOT / "deploy" / "single-host"
UNITS = ("linli-prepare.service", "linli@.service", "linli.target")
INSTALLED_LINLI = "/opt/linli/venv/bin/linli"
VAR = "/var/lib/linli"


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # keys are case-sensitive
    parser.read_string((SINGLE_HOST / name).read_text())
    return parser


def analyze() -> str:
    found = shutil.which("systemd-analyze")
    assert found, "no systemd-analyze: apt-get install systemd"
    return found


def test_the_units_pass_systemd_analyze_verify(tmp_path):
    """Copies with the venv's `linli` where install.sh puts it (verify checks
    that ExecStart exists); any warning, in a unit or what it pulls in, fails."""
    linli = Path(sys.executable).parent / "linli"
    assert linli.exists()
    for name in UNITS:
        text = (SINGLE_HOST / name).read_text()
        assert INSTALLED_LINLI in text or name == "linli.target"
        (tmp_path / name).write_text(text.replace(INSTALLED_LINLI, str(linli)))
    checked = ["linli-prepare.service", *(f"linli@{service}.service" for service in SERVICES), "linli.target"]
    result = subprocess.run([analyze(), "verify", "--man=no", "--recursive-errors=yes",
                             *(f"./{name}" for name in checked)],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_a_broken_unit_fails_the_check(tmp_path):
    """The check above can fail: a misspelt key, an ExecStart that is not there."""
    linli = Path(sys.executable).parent / "linli"
    (tmp_path / "linli@.service").write_text((SINGLE_HOST / "linli@.service").read_text()
                                             .replace("Restart=always", "Restrat=always")
                                             .replace(INSTALLED_LINLI, str(linli)))
    (tmp_path / "linli-prepare.service").write_text((SINGLE_HOST / "linli-prepare.service").read_text()
                                                    .replace(INSTALLED_LINLI, str(tmp_path / "no-linli")))
    for name, complaint in (("linli@gateway.service", "Unknown key 'Restrat'"),
                            ("linli-prepare.service", f"Command {tmp_path / 'no-linli'} is not executable")):
        result = subprocess.run([analyze(), "verify", "--man=no", "--recursive-errors=yes", f"./{name}"],
                                cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert result.returncode != 0 and complaint in result.stderr, result.stderr


def test_the_target_starts_every_service_after_prepare_as_the_service_user():
    wanted = unit("linli.target")["Unit"]["Wants"].split()
    assert sorted(wanted) == sorted(["linli-prepare.service", *(f"linli@{s}.service" for s in SERVICE_CLASSES)])

    prepare, service = unit("linli-prepare.service"), unit("linli@.service")
    assert prepare["Service"]["Type"] == "oneshot" and prepare["Service"]["RemainAfterExit"] == "yes"
    assert "linli-prepare.service" in service["Unit"]["Requires"]
    assert "linli-prepare.service" in service["Unit"]["After"].split()
    for after in ("rabbitmq-server.service", "postgresql.service", "network-online.target"):
        assert after in service["Unit"]["After"].split() and after in prepare["Unit"]["After"].split()
    assert service["Service"]["Restart"] == "always" and int(service["Service"]["RestartSec"]) > 0
    assert int(service["Unit"]["StartLimitBurst"]) > 0
    for parsed in (prepare, service):
        settings = parsed["Service"]
        assert settings["User"] == "linli" and settings["ReadWritePaths"] == VAR
        assert settings["ProtectSystem"] == "strict" and settings["NoNewPrivileges"] == "yes"
        assert settings["EnvironmentFile"] == "/etc/linli/linli.env"
        assert settings["UMask"] == "0077"
        assert "linli.target" in parsed["Unit"]["PartOf"]

    # The commands are ones `linli` takes, on the data folder.
    for parsed, command in ((prepare, "prepare"), (service, "serve")):
        argv = shlex.split(parsed["Service"]["ExecStart"].replace("%i", "gateway"))
        assert argv[0] == INSTALLED_LINLI
        args = cli.parser().parse_args(argv[1:])
        assert args.command == command and args.var == VAR


def test_install_script_parses_and_uses_the_units_paths():
    """It cannot run here (it installs system-wide, as root): it parses, and it
    puts things where the units, the nginx site and the operator's wrapper look."""
    for script in ("install.sh", "linli"):
        checked = subprocess.run(["bash", "-n", str(SINGLE_HOST / script)], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stderr
    install = (SINGLE_HOST / "install.sh").read_text()
    folders = dict(re.findall(r"^(PREFIX|VAR|ETC|UNITS)=(\S+)$", install, flags=re.M))
    assert folders == {"PREFIX": "/opt/linli", "VAR": VAR, "ETC": "/etc/linli", "UNITS": "/etc/systemd/system"}
    for name, value in folders.items():
        install = install.replace(f"${name}", value)
    assert f"for unit in {' '.join(UNITS)}; do" in install
    assert f"{INSTALLED_LINLI.rsplit('/bin/', 1)[0]}/bin/pip\" install -q -e" in install
    site = proxy.SINGLE_HOST_SITE.read_text()
    for path in re.findall(r"ssl_certificate(?:_key)? (\S+);", site):
        assert f'"{path}"' in install, path
    for setting in ("EnvironmentFile", "ReadWritePaths"):
        assert f"{unit('linli@.service')['Service'][setting]}" in install
    assert re.search(r"^LINLI_TRUSTED_PROXIES=127\.0\.0\.1$", install, flags=re.M)
    assert "upstream linli_gateway {\n    server 127.0.0.1:8000;" in site
    assert re.search(r"^LINLI_HTTP_HOST=127\.0\.0\.1\nLINLI_HTTP_PORT=8000$", install, flags=re.M)
    wrapper = (SINGLE_HOST / "linli").read_text()
    assert f"{INSTALLED_LINLI} --var {VAR}" in wrapper and "/etc/linli/linli.env" in wrapper


def nginx_check(tmp_path: Path, site: Path) -> subprocess.CompletedProcess:
    proxy.require_nginx()
    _ca, cert, key = proxy.make_certificate(tmp_path)
    return proxy.check(proxy.main_for_test(tmp_path, proxy.site_for_test(site, tmp_path, cert=cert, key=key)))


def test_the_single_host_proxy_config_passes_nginx_t_within_debians_nginx_conf(tmp_path):
    result = nginx_check(tmp_path, proxy.SINGLE_HOST_SITE)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_a_broken_proxy_config_fails_nginx_t(tmp_path):
    broken = tmp_path / "broken.conf"
    broken.write_text(proxy.SINGLE_HOST_SITE.read_text().replace("proxy_buffering off;", "proxy_buffering of;"))
    result = nginx_check(tmp_path, broken)
    assert result.returncode != 0 and "proxy_buffering" in result.stderr


def test_the_compose_proxy_config_passes_nginx_t(tmp_path):
    result = nginx_check(tmp_path, proxy.COMPOSE_SITE)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("site", [proxy.SINGLE_HOST_SITE, proxy.COMPOSE_SITE], ids=["single-host", "compose"])
def test_the_proxies_speak_tls_12_or_later_with_hsts_and_the_gateways_body_limit(site):
    text = site.read_text()
    assert re.search(r"listen 443 ssl", text) and "return 301 https://$host$request_uri;" in text
    assert re.findall(r"ssl_protocols ([^;]*);", text) == ["TLSv1.2 TLSv1.3"]
    assert 'add_header Strict-Transport-Security "max-age=63072000" always;' in text
    assert "X-Forwarded-For $proxy_add_x_forwarded_for" in text and "X-Forwarded-Proto $scheme" in text
    limit = re.search(r"client_max_body_size (\d+)k;", text)
    assert limit and int(limit.group(1)) * 1024 == MAX_BODY_BYTES
    # Past it, the gateway's own error (same code and message), as JSON.
    too_large = json.loads(re.search(r"return 413 '([^']*)';", text).group(1))
    assert too_large["error"]["code"] == "payload_too_large"
    assert too_large["error"]["message"] == f"The body is larger than {MAX_BODY_BYTES} bytes."


def test_serve_gives_a_service_what_linli_up_would_then_becomes_nameko(tmp_path, monkeypatch):
    """The environment of `linli up`'s process for that service (Stack.process_env):
    its own broker user, the gateway alone the token secret and signing key."""
    var = tmp_path / "var"
    operator = "amqp://admin:secret@broker.example:5672/office"
    monkeypatch.setenv("AMQP_URI", operator)
    for name in GATEWAY_ONLY + ("LINLI_CALLER_PUBLIC_KEY",):
        monkeypatch.delenv(name, raising=False)
    stack = Stack(var)  # makes the secrets, as `linli prepare` does
    passwords = {brokerusers.username(service, "office"): f"pw-{service}" for service in SERVICES}
    (var / BROKER_PASSWORDS).write_text(json.dumps(passwords))
    stack.service_uris = {service: brokerusers.with_user(operator, brokerusers.username(service, "office"),
                                                         f"pw-{service}") for service in SERVICES}
    execs = []
    monkeypatch.setattr(cli.os, "execve", lambda path, argv, env: execs.append((path, argv, env)))
    for service in SERVICES:
        assert cli.main(["--var", str(var), "serve", service, "--metrics-port", "9200"]) == 0
        path, argv, env = execs.pop()
        assert path == sys.executable
        assert argv[1:] == ["-m", "nameko", "run", "--config", str(ROOT / "deploy" / "config" / f"{service}.yml"),
                            SERVICE_CLASSES[service]]
        wanted = Stack(var, metrics_port=9200)
        wanted.service_uris = stack.service_uris
        assert env == wanted.process_env(service)
        assert env["AMQP_URI"].startswith(f"amqp://linli-{service}%40office:pw-{service}@broker.example")
        assert all((name in env) == (service == "gateway") for name in GATEWAY_ONLY)
        assert env["LINLI_CALLER_PUBLIC_KEY"]


def test_serve_before_prepare_says_so_and_starts_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli.os, "execve", lambda *args: pytest.fail("started without a broker user"))
    assert cli.main(["--var", str(tmp_path / "var"), "serve", "donations"]) == 1
    assert "run `linli prepare` first" in capsys.readouterr().err
