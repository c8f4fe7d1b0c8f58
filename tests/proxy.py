"""Debian's nginx with a Linli configuration, unprivileged on temporary paths:
checked with `nginx -t`, or run in front of a test stack. The site files are
the ones an operator installs, with only their ports, the certificate's and
the logs' paths rewritten; the main file is Debian's /etc/nginx/nginx.conf the
same way, so that a clash with the package's own settings shows here."""
from __future__ import annotations

import contextlib
import getpass
import os
import re
import socket
import subprocess
import time
from pathlib import Path

NGINX = "/usr/sbin/nginx"
CURL = "/usr/bin/curl"
DEBIAN_MAIN = Path("/etc/nginx/nginx.conf")
ROOT = Path(__file__).resolve().parents[1]
SINGLE_HOST_SITE = ROOT / "deploy" / "single-host" / "nginx-linli.conf"
COMPOSE_SITE = ROOT / "deploy" / "nginx.conf"


def require_nginx():
    """A missing nginx fails the run, never skips it."""
    assert os.access(NGINX, os.X_OK), f"no {NGINX}: run `bash deploy/ensure-proxy.sh` (apt-get install nginx)"
    assert DEBIAN_MAIN.is_file(), f"no {DEBIAN_MAIN}: Debian's nginx package is incomplete"
    assert os.access(CURL, os.X_OK), f"no {CURL}: run `bash deploy/ensure-proxy.sh` (apt-get install curl)"


def make_certificate(folder: Path, name: str = "localhost") -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate it signs for `name` and
    127.0.0.1: (ca.pem, cert.pem, key.pem)."""
    ca, ca_key = folder / "ca.pem", folder / "ca-key.pem"
    cert, key, request = folder / "cert.pem", folder / "key.pem", folder / "cert.csr"
    run = lambda *args: subprocess.run(["openssl", *args], check=True, capture_output=True)  # noqa: E731
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(ca_key), "-out", str(ca), "-days", "2", "-subj", "/CN=Linli test office CA")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(key), "-out", str(request), "-subj", f"/CN={name}")
    extensions = folder / "cert.ext"
    extensions.write_text(f"subjectAltName=DNS:{name},IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                          "extendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", str(request), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
        "-out", str(cert), "-days", "2", "-extfile", str(extensions))
    return ca, cert, key


def site_for_test(site: Path, folder: Path, *, cert: Path, key: Path, http_port: int = 8080,
                  https_port: int = 8443, gateway: str = "127.0.0.1:8000") -> str:
    """The site file with its listening ports, gateway address, certificate
    and log paths moved to ones an unprivileged test may use."""
    text = site.read_text()
    text = re.sub(r"listen \[::\]:\d+[^;]*;", "", text)  # the test listens on 127.0.0.1 only
    text = re.sub(r"listen (?:\d+\.\d+\.\d+\.\d+:)?80;", f"listen 127.0.0.1:{http_port};", text)
    text = re.sub(r"listen (?:\d+\.\d+\.\d+\.\d+:)?(?:443|8443) ssl", f"listen 127.0.0.1:{https_port} ssl", text)
    text = text.replace("server 127.0.0.1:8000;", f"server {gateway};")
    text = re.sub(r"ssl_certificate (\S+);", f"ssl_certificate {cert};", text)
    text = re.sub(r"ssl_certificate_key (\S+);", f"ssl_certificate_key {key};", text)
    text = re.sub(r"/var/log/nginx/", f"{folder}/", text)
    return text


def main_for_test(folder: Path, site_text: str) -> Path:
    """Debian's nginx.conf with our site where sites-enabled/* is included,
    and its pid, logs and temporary files in `folder`."""
    (folder / "site.conf").write_text(site_text)
    text = DEBIAN_MAIN.read_text()
    # Root (this machine, CI) would hand the workers to www-data, who cannot enter a private temp folder.
    user = f"user {getpass.getuser()};" if os.geteuid() == 0 else ""
    text = re.sub(r"^user [^;]*;", user, text, flags=re.M)
    text = re.sub(r"^pid [^;]*;", f"pid {folder}/nginx.pid;", text, flags=re.M)
    text = text.replace("/var/log/nginx/", f"{folder}/")
    text = text.replace("include /etc/nginx/sites-enabled/*;", f"include {folder}/site.conf;")
    temp_paths = "".join(f"\t{kind}_temp_path {folder}/{kind}-temp;\n"
                         for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    text = re.sub(r"^http \{\n", "http {\n" + temp_paths, text, count=1, flags=re.M)
    assert f"include {folder}/site.conf;" in text and temp_paths in text, "Debian's nginx.conf has changed shape"
    main = folder / "nginx.conf"
    main.write_text(text)
    return main


def check(main: Path) -> subprocess.CompletedProcess:
    """`nginx -t`: parse, load the certificates, open the logs."""
    return subprocess.run([NGINX, "-t", "-p", str(main.parent), "-c", str(main)],
                          capture_output=True, text=True, timeout=30)


def wait_listening(port: int, timeout: float = 10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")


@contextlib.contextmanager
def running(main: Path, port: int):
    """nginx in the foreground with `main`, until the block ends."""
    process = subprocess.Popen([NGINX, "-p", str(main.parent), "-c", str(main), "-g", "daemon off;"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        try:
            wait_listening(port)
        except AssertionError:
            process.kill()
            raise AssertionError(f"nginx did not start: {process.communicate()[0]}")
        yield process
    finally:
        if process.poll() is None:
            process.terminate()  # SIGTERM: fast shutdown
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
