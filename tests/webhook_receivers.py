"""Local HTTP receivers that the webhook tests send alerts to, and the answers
they give: in turn the statuses asked for, or a receiver's own behaviour
(`drip` and others). They use the standard library's threads, sockets and
select, which eventlet's monkey-patching (tests/conftest.py) turns green."""
import select
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def hung_up(connection, wait: float) -> bool:
    """Whether the sender closed the connection, within `wait` seconds (a receiver's pause)."""
    readable, _, _ = select.select([connection], [], [], wait)
    return bool(readable) and connection.recv(1, socket.MSG_PEEK) == b""


def respond(handler, status: int):
    """`status` and an empty body."""
    handler.send_response(status)
    handler.send_header("Content-Length", "0")
    handler.end_headers()


def drip(handler, status: int = 200):
    """`status` and its headers at once, then the body a byte every 2 s, for as long as the sender listens."""
    handler.send_response(status)
    handler.send_header("Content-Length", str(10 ** 9))
    handler.end_headers()
    while not hung_up(handler.connection, 2):
        handler.wfile.write(b"x")
        handler.wfile.flush()


class Receiver:
    """A local HTTP endpoint at `url`. It records every request it reads, as
    (headers, body) in `requests` and the monotonic time it was read in
    `arrived`, then answers: `answer(handler)` if given, else the statuses in
    turn (the last one thereafter; 200 if none). `open` counts the requests
    it holds now, `most_open` the most it held at once."""

    def __init__(self, *statuses: int, answer=None, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None):
        statuses = statuses or (200,)
        self.requests: list[tuple[dict, bytes]] = []
        self.arrived: list[float] = []
        self.open = 0
        self.most_open = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                receiver.open += 1
                receiver.most_open = max(receiver.most_open, receiver.open)
                try:
                    body = self.rfile.read(int(self.headers["Content-Length"]))
                    receiver.requests.append((dict(self.headers), body))
                    receiver.arrived.append(time.monotonic())
                    if answer is not None:
                        answer(self)
                    else:
                        respond(self, statuses[min(len(receiver.requests), len(statuses)) - 1])
                except OSError:
                    pass  # the sender hung up, as it may
                finally:
                    receiver.open -= 1

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_port
        self.url = f"http://{host}:{self.port}/hook"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
