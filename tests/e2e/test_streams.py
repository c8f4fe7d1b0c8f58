"""Event streams hold nothing for a client that has gone: 400 streams opened and
closed by one viewer were held by the gateway for over 12 minutes. Now a
heartbeat finds a closed client, its socket is closed and its slot given back;
and an account may hold only a few streams at once (past that, 429)."""
import os
import socket
import time

import pytest

from tests.conftest import wait_for
from tests.e2e.conftest import running_stack

# A stack of its own, 60 streams opened and closed: in make test-slow.
pytestmark = [pytest.mark.slow, pytest.mark.transport]
HEARTBEAT_SECONDS = 1  # 15 by default; short here, so that the test waits seconds, not half a minute
PER_ACCOUNT = 5
ACCOUNTS = 12


@pytest.fixture(scope="module")
def stack(module_vhost, tmp_path_factory):
    with running_stack(module_vhost, tmp_path_factory.mktemp("linli") / "var",
                       LINLI_STREAM_HEARTBEAT_SECONDS=str(HEARTBEAT_SECONDS),
                       LINLI_STREAMS_PER_ACCOUNT=str(PER_ACCOUNT)) as stack:
        yield stack


def open_stream(stack, token: str, path: str) -> tuple[socket.socket, bytes]:
    """A stream as a browser opens it: (the socket, the answer's head)."""
    sock = socket.create_connection(("127.0.0.1", stack.port), timeout=15)
    sock.sendall(f"GET /api/v1{path} HTTP/1.1\r\nHost: linli\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        assert chunk, head
        head += chunk
    return sock, head


ESTABLISHED = "01"  # a socket's state in /proc/net/tcp


def sockets_of(pid: int, port: int, state: str | None = None) -> int:
    """How many of the process's sockets are on `port` (its HTTP port: clients' connections
    and the listening one), not the database's or the broker's, which it opens as it needs;
    with `state`, only those in it (ESTABLISHED: a connection both ends hold open)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except FileNotFoundError:  # closed while we looked
            continue
        if link.startswith("socket:["):
            inodes.add(link[len("socket:["):-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            next(lines)  # the header
            for line in lines:
                fields = line.split()
                local_port, inode = int(fields[1].rsplit(":", 1)[1], 16), fields[9]
                count += local_port == port and inode in inodes and state in (None, fields[3])
    return count


def test_closed_streams_release_their_sockets_within_a_minute(stack, register):
    viewers = [register(roles=["viewer"], party_member=False)[0] for _ in range(ACCOUNTS)]
    gateway = stack.processes[("gateway", 0)].pid
    for viewer in viewers:  # each account's first request done, so the count below is of streams alone
        assert viewer.get("/me").status_code == 200
    before = sockets_of(gateway, stack.port)

    opened = []
    for viewer in viewers:
        for number in range(PER_ACCOUNT):
            sock, head = open_stream(stack, viewer.token, "/events/stream" if number % 2 else "/me/alerts/stream")
            assert head.startswith(b"HTTP/1.1 200"), head
            opened.append(sock)
    # Every stream held open (counted as such: a request's socket left from before may close meanwhile).
    assert sockets_of(gateway, stack.port, ESTABLISHED) >= len(opened)

    for sock in opened:
        sock.close()
    closed_at = time.monotonic()
    wait_for(lambda: sockets_of(gateway, stack.port) <= before + 2, timeout=60, interval=0.5,
             what=f"the gateway to close the {len(opened)} closed streams' sockets")
    print(f"{len(opened)} closed streams: sockets released after {time.monotonic() - closed_at:.1f} s "
          f"(heartbeat {HEARTBEAT_SECONDS} s)")
    log = (stack.var_dir / "log" / "gateway-0.log").read_text(errors="replace")
    assert "Traceback" not in log  # a client that leaves is no fault of the gateway's


def test_an_account_holds_a_bounded_number_of_streams_and_a_closed_one_frees_its_slot(stack, register):
    viewer, other = (register(roles=["viewer"], party_member=False)[0] for _ in range(2))
    opened = [open_stream(stack, viewer.token, path)
              for path in ["/me/alerts/stream", "/events/stream"] * (PER_ACCOUNT // 2) + ["/events/stream"]]
    assert all(head.startswith(b"HTTP/1.1 200") for _sock, head in opened)

    # One more, of either kind: refused at once, with when to try again.
    for path in ("/events/stream", "/me/alerts/stream"):
        sock, head = open_stream(stack, viewer.token, path)
        sock.close()
        assert head.startswith(b"HTTP/1.1 429"), head
        assert b"\r\nRetry-After: " in head
    # Another account is not held up.
    sock, head = open_stream(stack, other.token, "/events/stream")
    sock.close()
    assert head.startswith(b"HTTP/1.1 200"), head

    # A stream closed by its client frees its slot within two heartbeats.
    opened.pop()[0].close()
    answer = wait_for(lambda: reopened(stack, viewer.token), timeout=60, interval=0.5, what="a freed slot")
    answer.close()
    for sock, _head in opened:
        sock.close()
    log = (stack.var_dir / "log" / "gateway-0.log").read_text(errors="replace")
    assert "Traceback" not in log  # a client refused is no fault of the gateway's


def reopened(stack, token: str):
    sock, head = open_stream(stack, token, "/events/stream")
    if head.startswith(b"HTTP/1.1 200"):
        return sock
    sock.close()
    return None
