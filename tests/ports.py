"""Ports for what the tests start (stacks, broker nodes, `linli up`)."""
import random
import socket

# Below Linux's ephemeral range (32768-60999): a port found free there may be taken by any
# outbound connection (a database client's) before the process that is to listen on it
# starts; here only a listener can take it.
LOW, HIGH = 20000, 32000


def free_port(count: int = 1) -> int:
    """The first of `count` consecutive ports nothing listens on (a stack of two gateways
    listens on port and port + 1)."""
    while True:
        first = random.randrange(LOW, HIGH - count)
        try:
            for port in range(first, first + count):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
