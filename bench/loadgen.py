"""The benchmark's load generator: a lean asyncio HTTP/1.1 client (raw
sockets, keep-alive, no HTTP library), run as its own process so that it
never shares an interpreter with the stack it measures.

    .venv/bin/python bench/loadgen.py < spec.json > result.json

The spec (JSON on stdin):

    url           "http://127.0.0.1:18000/api/v1/campaigns/ID/donations"
    method, body  "POST", a JSON string (sent as is)
    headers       {"Authorization": "Bearer ..."}
    key_header    "Idempotency-Key": a header with a value unique to each request
    mode          "closed": `connections` clients, each sends its next request
                  when the last is answered (throughput and latency at N)
                  "open": `rate` requests/s on a fixed schedule, whatever the
                  answers, on up to `max_connections` (overload, shedding);
                  latency counts from the scheduled time, so a client that
                  fell behind does not hide the server's queue
                  "burst": `count` requests at once, each on a connection of
                  its own, none retried (a crowd at the donation table)
    duration      seconds measured, after `warmup` seconds not counted
    timeout       seconds after which a request counts as hung (and is dropped)
    record        a field of each 2xx answer's JSON to return with the send time
                  (time.monotonic(), comparable across processes on Linux)

The result (JSON on stdout): requests sent and answered in the measured window,
answers by status, errors, hung requests, throughput of 2xx answers, latency
percentiles of 2xx (admitted) and of 429/503 (shed) answers (and, apart, those
of the warmup's requests: an open loop's onset), and the client's
own CPU time (to see whether the client, not the server, was the limit)."""
from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
import uuid
from urllib.parse import urlparse


def percentiles(ms: list[float]) -> dict:
    if not ms:
        return {"n": 0}
    ordered = sorted(ms)

    def at(share):
        return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))], 2)

    return {"n": len(ordered), "p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "max": round(ordered[-1], 2),
            "mean": round(sum(ordered) / len(ordered), 2)}


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    def close(self):
        self.writer.close()


class LoadGenerator:
    def __init__(self, spec: dict):
        self.spec = spec
        url = urlparse(spec["url"])
        self.host, self.port = url.hostname, url.port or 80
        self.path = url.path + (f"?{url.query}" if url.query else "")
        self.body = spec.get("body", "").encode()
        headers = {"Host": f"{self.host}:{self.port}", "Content-Type": "application/json",
                   "Content-Length": str(len(self.body)), **spec.get("headers", {})}
        self.head = (f"{spec.get('method', 'POST')} {self.path} HTTP/1.1\r\n"
                     + "".join(f"{k}: {v}\r\n" for k, v in headers.items())).encode()
        self.key_header = spec.get("key_header")
        self.key_prefix = uuid.uuid4().hex[:16]
        self.counter = 0
        self.timeout = float(spec.get("timeout", 10))
        self.record = spec.get("record")
        # results of requests started in the measured window
        self.window = (0.0, 0.0)
        self.status: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.ok_ms: list[float] = []
        self.shed_ms: list[float] = []
        self.other_ms: list[float] = []
        self.records: list[list] = []
        # 2xx and 429/503 latencies of the requests of the warmup (open loop: an overload's onset)
        self.warmup_ok_ms: list[float] = []
        self.warmup_shed_ms: list[float] = []
        self.sent = self.answered = self.hung = self.waited_for_connection = 0
        self.ok_in_window = 0  # 2xx answered inside the window (closed-loop throughput)
        self.last_ok = 0.0  # when the last 2xx came (open loop: answers go on after the window)

    def request_bytes(self) -> bytes:
        self.counter += 1
        extra = f"{self.key_header}: bench-{self.key_prefix}-{self.counter}\r\n" if self.key_header else ""
        return self.head + extra.encode() + b"\r\n" + self.body

    async def connect(self) -> Connection:
        reader, writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
        return Connection(reader, writer)

    async def exchange(self, connection: Connection, payload: bytes) -> tuple[int, bytes, bool]:
        """Send one request, read one answer: (status, body, keep the connection)."""
        connection.writer.write(payload)
        reader = connection.reader
        status_line = await reader.readline()
        if not status_line:
            raise ConnectionResetError("closed by the server")
        status = int(status_line.split(b" ", 2)[1])
        length, chunked, keep = 0, False, True
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and b"close" in value.lower():
                keep = False
        if chunked:
            parts = []
            while True:
                size = int((await reader.readline()).split(b";")[0], 16)
                if size == 0:
                    await reader.readline()
                    break
                parts.append(await reader.readexactly(size))
                await reader.readline()
            body = b"".join(parts)
        else:
            body = await reader.readexactly(length) if length else b""
        return status, body, keep

    def note(self, started: float, sent_at: float, status: int | None, body: bytes, error: str | None):
        """Count one request that started (was scheduled) inside the window; of
        one of the warmup, only its latency, apart."""
        finished = time.monotonic()
        ms = (finished - started) * 1000
        if started < self.window[0]:
            if status is not None and 200 <= status < 300:
                self.warmup_ok_ms.append(ms)
            elif status in (429, 503):
                self.warmup_shed_ms.append(ms)
            return
        if started >= self.window[1]:
            return
        self.sent += 1
        if error:
            self.errors[error] = self.errors.get(error, 0) + 1
            if error == "timeout":
                self.hung += 1
            return
        self.answered += 1
        self.status[str(status)] = self.status.get(str(status), 0) + 1
        if 200 <= status < 300:
            self.ok_ms.append(ms)
            self.last_ok = max(self.last_ok, finished)
            if finished < self.window[1]:
                self.ok_in_window += 1
            if self.record:
                try:
                    self.records.append([sent_at, json.loads(body)[self.record]])
                except (ValueError, KeyError, TypeError):
                    pass
        elif status in (429, 503):
            self.shed_ms.append(ms)
        else:
            self.other_ms.append(ms)

    async def one(self, connection: Connection | None, started: float) -> Connection | None:
        """One request on `connection` (opened if None); returns the connection
        to reuse, or None if it was closed."""
        payload = self.request_bytes()
        sent_at = time.monotonic()
        try:
            if connection is None:
                connection = await asyncio.wait_for(self.connect(), self.timeout)
            status, body, keep = await asyncio.wait_for(self.exchange(connection, payload), self.timeout)
        except asyncio.TimeoutError:
            self.note(started, sent_at, None, b"", "timeout")
            if connection:
                connection.close()
            return None
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as error:
            self.note(started, sent_at, None, b"", type(error).__name__)
            if connection:
                connection.close()
            return None
        self.note(started, sent_at, status, body, None)
        if not keep:
            connection.close()
            return None
        return connection

    async def closed_loop(self, connections: int, warmup: float, duration: float):
        begin = time.monotonic()
        self.window = (begin + warmup, begin + warmup + duration)

        async def client():
            connection = None
            while time.monotonic() < self.window[1]:
                connection = await self.one(connection, time.monotonic())
                if connection is None:
                    await asyncio.sleep(0.01)  # refused or reset: do not spin
            if connection:
                connection.close()

        await asyncio.gather(*(client() for _ in range(connections)))

    async def open_loop(self, rate: float, max_connections: int, warmup: float, duration: float):
        idle: list[Connection] = []
        opened = 0
        free = asyncio.Condition()
        for _ in range(min(max_connections, max(4, int(rate * 0.02)))):
            try:
                idle.append(await self.connect())
                opened += 1
            except OSError:
                break
        begin = time.monotonic()
        self.window = (begin + warmup, begin + warmup + duration)
        tasks = set()

        async def fire(scheduled: float):
            nonlocal opened
            if idle:
                connection = idle.pop()
            elif opened < max_connections:
                opened += 1
                connection = None
            else:
                if self.window[0] <= scheduled < self.window[1]:
                    self.waited_for_connection += 1
                async with free:
                    await free.wait_for(lambda: bool(idle) or opened < max_connections)
                    if idle:
                        connection = idle.pop()
                    else:
                        opened += 1
                        connection = None
            connection = await self.one(connection, scheduled)
            async with free:
                if connection is None:
                    opened -= 1
                else:
                    idle.append(connection)
                free.notify()

        interval, number = 1.0 / rate, 0
        while True:
            now = time.monotonic()
            if now >= self.window[1]:
                break
            while begin + number * interval <= now:
                task = asyncio.ensure_future(fire(begin + number * interval))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                number += 1
            await asyncio.sleep(max(0.0, begin + number * interval - time.monotonic()))
        if tasks:
            await asyncio.wait(tasks, timeout=self.timeout + 5)
        for connection in idle:
            connection.close()

    async def burst(self, count: int):
        begin = time.monotonic()
        self.window = (begin, begin + 1)  # every request starts at `begin`: all are counted
        await asyncio.gather(*(self.one(None, begin) for _ in range(count)))

    def result(self, cpu_seconds: float, wall: float) -> dict:
        duration = self.window[1] - self.window[0]
        # closed loop: 2xx answered inside the window; open loop: the 2xx of the requests
        # scheduled in the window, over the time until the last of them was answered
        span = duration if self.spec["mode"] == "closed" else max(duration, self.last_ok - self.window[0])
        if self.spec["mode"] == "burst":  # from the burst to its last 2xx answer
            span = max(1e-3, self.last_ok - self.window[0])
        return {
            "mode": self.spec["mode"], "duration_s": round(duration, 2),
            "connections": self.spec.get("connections"), "rate": self.spec.get("rate"), "count": self.spec.get("count"),
            "sent": self.sent, "answered": self.answered, "status": self.status, "errors": self.errors,
            "hung": self.hung, "waited_for_connection": self.waited_for_connection,
            "ok_per_s": round((self.ok_in_window if self.spec["mode"] == "closed" else len(self.ok_ms)) / span, 1),
            "answer_span_s": round(span, 2),
            "latency_ok_ms": percentiles(self.ok_ms), "latency_shed_ms": percentiles(self.shed_ms),
            "latency_other_ms": percentiles(self.other_ms),
            "warmup": {"latency_ok_ms": percentiles(self.warmup_ok_ms),
                       "latency_shed_ms": percentiles(self.warmup_shed_ms)},
            "client_cpu_share": round(cpu_seconds / wall, 3), "records": self.records,
        }


async def main_async(spec: dict) -> dict:
    generator = LoadGenerator(spec)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before, wall_before = usage.ru_utime + usage.ru_stime, time.monotonic()
    warmup, duration = float(spec.get("warmup", 1)), float(spec["duration"])
    if spec["mode"] == "closed":
        await generator.closed_loop(int(spec["connections"]), warmup, duration)
    elif spec["mode"] == "burst":
        await generator.burst(int(spec["count"]))
    else:
        await generator.open_loop(float(spec["rate"]), int(spec.get("max_connections", 256)), warmup, duration)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return generator.result(usage.ru_utime + usage.ru_stime - cpu_before, time.monotonic() - wall_before)


def main() -> int:
    spec = json.load(sys.stdin)
    json.dump(asyncio.run(main_async(spec)), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
