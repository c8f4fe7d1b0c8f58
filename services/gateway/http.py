"""The HTTP layer: one entrypoint type for every API route, which checks the
token and role, parses and validates the JSON body and query with the route's
marshmallow schemas, and answers every error in one JSON shape. Its routes
are also what the OpenAPI document is built from."""
from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import math
import re
import time
import uuid

import amqp.exceptions
import eventlet
import kombu.exceptions
from marshmallow import Schema, ValidationError
from nameko.exceptions import ConfigurationError, ContainerBeingKilled, RemoteError, RpcTimeout, UnknownService
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import HttpOnlyProtocol, WebServer, WsgiApp
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request, Response

from services.common import logs, strict_json
from services.common.errors import (
    CallerNotVouched, IdempotencyKeyRequired, InvalidInput, LinliError, NotAuthenticated, PayloadTooLarge,
    Unavailable, UnsupportedMediaType, invalid_input,
)
from services.common.metrics import HTTP_REQUESTS, HTTP_SECONDS, HTTP_SHED
from services.common.schemas import field_name, refuse_unstorable, shared
from services.common.service import EXPECTED_ERRORS
from services.gateway import auth, headers
from services.gateway.devices import DeviceStates
from services.gateway.slots import Slots

log = logging.getLogger(__name__)
access_log = logging.getLogger("services.gateway.access")

API_PREFIX = "/api/v1"
MAX_BODY_BYTES = 256 * 1024
LISTEN_BACKLOG = 1024  # connections the kernel holds until the server accepts them

# Load shedding (see Admission); its settings and their defaults: deploy/config/gateway.yml
# (MAX_IN_FLIGHT, MAX_IN_FLIGHT_PER_SERVICE, ADMISSION_DEADLINE, OVERLOAD_DEADLINE).
ASSUMED_SERVICE_SECONDS = 0.1     # how long a request holds its slot, before anything was measured
# The interval is measured over this much time with all slots taken, and over as many slots as
# there are, not slot by slot: a batch of coalesced writes frees tens of slots within a millisecond
# after a wait, and an average of the single gaps says slots free up several times faster than
# they do (eight, in batches of 32); the wait before a batch's first slot alone, several times slower.
MEASURE_OVER_SECONDS = 0.2
SMOOTHING = 0.3                   # weight of each new measurement in the moving average
# A queue that has not emptied for this long is an overload, not a burst: from then on a request
# may start to wait only if it expects a slot within OVERLOAD_DEADLINE, until no request has found
# every slot taken for as long. What an overload's onset lets in to wait meanwhile is served
# after it (at 150 % of the maximum, with 1 s: admitted p99 0.5-0.6 s and refusals' up to 0.4 s
# through the next second; with 0.5 s that backlog is half, gone within the first second). A
# crowd that comes at once is all queued when it comes: 1,000 gifts at once were all served.
STANDING_SECONDS = 0.5
# Idle this long, a scope starts its next busy period from no faster than the assumption: the
# rate measured as the last burst drained (the gateway no longer reading new requests) is
# quicker than the next burst will see, and it would let in more than the deadline serves.
FORGET_AFTER_SECONDS = 2.0
# An overload ends once no more come than are served, by this much: what it lets in is fewer
# than the maximum (at 150 %, 48-93 %), so as many coming as it serves may still fit the
# maximum (90 % of it came: an overload's own refusals had kept it on).
DEMAND_MARGIN = 1.25
MAX_RETRY_AFTER = 30
ROUTES_REMEMBERED = 4096          # method and path → route (JsonWsgiApp._route)
WORKERS_KEPT_FOR_EVENTS = 2       # of max_workers: the alert handler and the timer always find one


class Admission:
    """At most `limit` requests at once. One that finds no free slot waits for
    one if it can expect to get it within the deadline, else it is refused at
    once: Unavailable (503, Retry-After). Its expected wait is (requests
    waiting ahead of it + 1) × the interval at which slots free up while all
    are taken: a moving average of that interval, each measurement taken over
    MEASURE_OVER_SECONDS and `limit` slots (before any, limit slots each held
    ASSUMED_SERVICE_SECONDS). What counts is how fast the queue drains,
    whatever kinds of request are in it. And it is at least as long as no slot
    has freed up: a stalled backend is not expected to free one within the
    deadline once it has freed none for as long. A busy period after an idle
    one starts from no faster than the assumption (FORGET_AFTER_SECONDS).
    Under an overload the interval may also shorten to the rate at which
    those let in are served (_served_in_overload).

    The deadline is `deadline` while a queue comes and goes (a burst: the
    crowd at the donation table is served), and `overload_deadline` once the
    queue has stood STANDING_SECONDS without emptying and is longer than half
    the slots (more keeps coming than is served: the excess is refused at
    once), until no request has found every slot taken, or been refused, for
    as long, or no more come than are served (by DEMAND_MARGIN). In an
    overload it bounds a request's answer, not only its wait: the requests in
    flight are ahead of it too, and one may be refused with slots free (what
    is admitted is answered quickly: fewer at once). The
    deadline decides who may wait; a waiter let in is served when its turn
    comes, within the burst deadline (or what is left of the request's), and
    is never refused after waiting: a refusal comes at once or not at all,
    save for a stall. A limit of 0 admits everything."""

    def __init__(self, limit: int, deadline: float, scope: str, clock=time.monotonic,
                 overload_deadline: float | None = None):
        self.limit = max(0, int(limit))
        self.deadline_in_burst = max(0.0, float(deadline))
        self.overload_deadline = (self.deadline_in_burst if overload_deadline is None
                                  else min(self.deadline_in_burst, max(0.0, float(overload_deadline))))
        self.scope = scope  # for the metric and the message: "gateway" or a service's name
        self.assumed = ASSUMED_SERVICE_SECONDS / max(1, self.limit)
        self.interval = self.assumed  # seconds between slots freeing up while all are taken
        self._clock = clock
        self._slots = Slots(self.limit) if self.limit else None
        self._full_since = clock()  # when a slot last freed up, or the last free one was taken
        self._measured_at = clock()  # the last interval measured
        self._busy = 0.0  # seconds with all slots taken, and slots freed in them, towards the next measurement
        self._freed = 0
        self._measured = False  # whether the interval is measured yet, or still assumed
        self._queue_began = clock()  # when the queue last went from empty to waiting
        self._pressed_at = clock() - STANDING_SECONDS  # when a request last found every slot taken, or was refused
        self.overloaded = False
        self._overload_window_began, self._overload_freed = clock(), 0  # _served_in_overload
        self._came = self._served = 0  # requests that came, and were served, ever
        self._count_demand_from(clock())  # an overload's window (_demand_fits)

    @property
    def deadline(self) -> float:
        """The longest a request that finds every slot taken now may wait (in
        an overload: until answered)."""
        return self.overload_deadline if self._overloaded_now() else self.deadline_in_burst

    def _overloaded_now(self) -> bool:
        """An overload begins once the queue has stood STANDING_SECONDS and is
        longer than half the slots (a closed loop of writers, each writing
        again when answered, keeps a queue standing too, but one no longer
        than its writers past the slots: 64 on 62). It ends once no request
        has found every slot taken, or been refused, for STANDING_SECONDS, or
        once no more come than are served (not once the queue is empty: under
        an overload few wait, and the queue is often empty while it lasts)."""
        now = self._clock()
        if self._queue() > self.limit // 2 and now - self._queue_began >= STANDING_SECONDS:
            self.overloaded = True
            self._count_demand_from(now)  # from when its queue last stood
        elif self.overloaded and (now - self._pressed_at >= STANDING_SECONDS or self._demand_fits(now)):
            self.overloaded = False
        return self.overloaded

    def _demand_fits(self, now: float) -> bool:
        """Whether, over the last STANDING_SECONDS of an overload, no more came
        than the requests let in were served in it, by DEMAND_MARGIN. At 90 %
        of the maximum a moment's queue began an overload, and its own
        refusals kept it on: 13-20 % of the gifts refused, against 0.5-2 %
        before the in-flight bound."""
        if now - self._counted_since < STANDING_SECONDS:
            return False
        fits = self._came - self._came_then <= (self._served - self._served_then) * DEMAND_MARGIN
        self._count_demand_from(now)
        return fits

    def _count_demand_from(self, now: float):
        """Start an overload's window: the requests that come, and are served, from now."""
        self._counted_since, self._came_then, self._served_then = now, self._came, self._served

    @property
    def in_flight(self) -> int:
        return self.limit - self._slots.free if self._slots is not None else 0

    def expected_wait(self) -> float:
        """Seconds one more request would wait for a slot (in an overload: for its answer)."""
        return max(self._queued_wait(), self._silent())

    def _queued_wait(self) -> float:
        # In an overload the requests in flight count too: what keeps the admitted answered
        # within the short deadline is fewer of them at once, not only a short queue (Little:
        # a slot is held the requests in flight × the interval). 48 gifts in flight held theirs
        # 80 ms at 600 a second, and the admitted p99 at 150 % of the maximum was 5× the
        # half-load p99. The interval stays the one measured with every slot taken: measured
        # on fewer at once, it slows with them, and lets in fewer still (seen: 90 gifts a second).
        ahead = self._queue() + 1 + (self.in_flight if self.overloaded else 0)
        return ahead * self.interval

    def _silent(self) -> float:
        """Seconds since a slot last freed up, while all are taken."""
        return self._clock() - self._full_since if self._slots is not None and self._slots.locked() else 0.0

    def _too_long(self, deadline: float, stall_limit: float) -> bool:
        """Whether one more request would wait past `deadline`. A silence is
        a stall only past `stall_limit`, the burst deadline (or what is left
        of the request's): under an overload a batch of writes may take
        longer than the overload deadline to come back."""
        return self._queued_wait() > deadline or self._silent() > stall_limit

    @contextlib.contextmanager
    def admit(self, wait_until: float | None = None, judged: bool = False):
        """`wait_until`: the request has waited in another Admission already,
        and waits here only for what is left of its deadline (on this clock).
        `judged`: it was let in by refuse_now."""
        if self._slots is None:
            yield
            return
        if not judged:  # (one let in by refuse_now was counted there)
            self._came += 1
        if self._slots.has_free() and (judged or not self._overloaded_now()):
            self._take_free()
        else:
            now, left, allowed = self._judge(wait_until)
            if not self._queue():
                self._queue_began = now
            # Let in, it waits its turn even past the overload deadline (the estimate is an
            # average: a batch may come back late): refused after waiting, it would have
            # waited for nothing, and a refusal that late misses its point.
            if self._slots.has_free():  # under an overload, within its deadline
                self._take_free()
            elif not (self._slots.take(left) if left > 0 else False):
                self._refuse(self.expected_wait(), allowed)
        try:
            yield
        finally:
            if self._slots.locked():  # all were taken (a slot handed to a waiter stays taken): measured
                self._slot_freed(self._clock())
            elif self.overloaded:
                self._served_in_overload(self._clock())
            self._served += 1
            self._slots.give_back()

    def _take_free(self):
        self._slots.take_free()
        if self._slots.locked():  # took the last free slot: all are taken from now
            self._full_since = self._clock()
            if self._full_since - self._measured_at > FORGET_AFTER_SECONDS:  # a new busy period
                self.interval = max(self.interval, self.assumed)
                self._busy, self._freed = 0.0, 0

    def refuse_now(self, wait_until: float | None = None):
        """Unavailable if a request asking for a slot now would be refused: a
        route whose call will ask this bound refuses so before it spends any
        work on the request (ApiEntrypoint `coalesced`). It takes no slot; when
        its call asks for one (`judged`), a free one is its own without
        another look: under an overload, those let in meanwhile, while the
        gateway worked on it, would have refused many after the work."""
        if self._slots is None:
            return
        self._came += 1
        if not self._slots.has_free() or self._overloaded_now():
            self._judge(wait_until)

    def _judge(self, wait_until: float | None) -> tuple[float, float, float]:
        """For a request that finds every slot taken, or comes in an overload:
        refused (Unavailable) if it would wait too long; else (now, the wait
        left to it, the deadline)."""
        allowed = self.deadline
        now = self._clock()
        left = self.deadline_in_burst if wait_until is None else min(self.deadline_in_burst, wait_until - now)
        too_long = self._too_long(min(allowed, left), stall_limit=left)
        if too_long or not self._slots.has_free():
            self._pressed_at = now
        if too_long:
            self._refuse(self.expected_wait(), allowed)
        return now, left, allowed

    def _slot_freed(self, now: float):
        self._busy += now - self._full_since
        self._freed += 1
        self._full_since = self._measured_at = now
        # Over as many slots as there are, too: a batch slower than MEASURE_OVER_SECONDS
        # frees its slots after one long gap, and its first slot alone said a slot per gap
        # (0.3 s where it was 0.3 s for all 32: a burst's later arrivals expected to wait
        # half a minute, and were refused).
        if self._busy >= MEASURE_OVER_SECONDS and self._freed >= self.limit:
            interval = self._busy / self._freed
            self.interval = self.interval + SMOOTHING * (interval - self.interval) if self._measured else interval
            self._measured = True
            self._busy, self._freed = 0.0, 0

    def _served_in_overload(self, now: float):
        """Under an overload fewer are let in than there are slots, so the
        interval is not measured with every slot taken, and stayed what it was
        when the overload began: measured in a closed loop whose batches free
        more slots than there are waiters (3-5 ms where slots freed every
        ~2 ms), or at the onset while the gateway read the flood. ~19 gifts in
        flight were allowed, and 291 a second served of a maximum of 501. The
        rate at which those let in are served shows the scope to be at least
        that fast: the interval may shorten to it (over MEASURE_OVER_SECONDS
        and as many frees as slots), never lengthen (measured on fewer at
        once, it slows with them and would let in fewer still)."""
        if now - self._overload_window_began > MEASURE_OVER_SECONDS * 2:  # too few freed meanwhile: begin again
            self._overload_window_began, self._overload_freed = now, 0
            return
        self._overload_freed += 1
        elapsed = now - self._overload_window_began
        if elapsed >= MEASURE_OVER_SECONDS and self._overload_freed >= self.limit:
            interval = elapsed / self._overload_freed
            if interval < self.interval:
                self.interval += SMOOTHING * (interval - self.interval)
            self._overload_window_began, self._overload_freed = now, 0

    def _queue(self) -> int:
        """Requests waiting for a slot; not those handed one that have yet to run:
        a batch's answers hand out tens of slots at once."""
        return self._slots.waiting if self._slots is not None else 0

    def _refuse(self, expected: float, deadline: float):
        HTTP_SHED.labels(self.scope).inc()
        what = "The gateway is" if self.scope == "gateway" else f"The {self.scope} service is"
        # When the queue would be short enough again, roughly.
        retry_after = min(MAX_RETRY_AFTER, max(1, math.ceil(expected - deadline)))
        raise Unavailable(f"{what} busy; try again in a moment.", {"retry_after": retry_after})


def trusted_proxies(config: dict) -> list:
    """TRUSTED_PROXIES (env LINLI_TRUSTED_PROXIES): comma-separated addresses
    or networks of the proxies whose X-Forwarded-For is believed."""
    return [ipaddress.ip_network(part.strip(), strict=False)
            for part in str(config.get("TRUSTED_PROXIES") or "").split(",") if part.strip()]


def client_address(request, proxies: list) -> str:
    """Who the client is, for the per-address limits: the peer, or, when the
    peer is a trusted proxy, the nearest address in X-Forwarded-For that is
    not one (each proxy appends who it heard from; what the client itself
    wrote there, further left, is not believed)."""
    def trusted(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in proxies)

    peer = request.remote_addr or "unknown"
    if not proxies or not trusted(peer):
        return peer
    hops = [hop.strip() for hop in request.headers.get("X-Forwarded-For", "").split(",") if hop.strip()]
    for hop in reversed(hops):
        if not trusted(hop):
            try:
                return str(ipaddress.ip_address(hop))[:64]
            except ValueError:  # garbage where an address should be: stop believing the header here
                return peer
    return peer


def json_response(payload, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json.dumps(payload, ensure_ascii=False), status=status,
                    headers=headers, mimetype="application/json")


def error_payload(code: str, message: str, details: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def _error_json(code: str, message: str, status: int, details: dict | None = None,
                headers: dict | None = None) -> Response:
    """An error in the one shape, with the request id bound now (the
    request's, in its connection's or its worker's green thread) already in
    its body: _stamp need not read the body back and write it again (~8 % of
    a refusal's CPU in the gateway)."""
    payload = error_payload(code, message, details)
    request_id = logs.current_request_id()
    if request_id:
        payload["error"]["request_id"] = request_id
    response = json_response(payload, status, headers)
    response.error_code, response.stamped_id = code, request_id
    return response


def error_response(exc: BaseException) -> Response:
    """Map any exception to the one error shape. Never a traceback to a client."""
    if isinstance(exc, CallerNotVouched):
        # A service refused this gateway's assertion: its keys or clock are wrong,
        # which is ours to fix, not the client's; the reason stays in our log.
        log.error("a service refused the gateway's assertion of the caller (%s): check CALLER_SIGNING_KEY, "
                  "CALLER_PUBLIC_KEY and the clocks", exc.details.get("reason"))
        return _error_json("internal_error", "Something went wrong on our side.", 500)
    if isinstance(exc, LinliError):
        retry_after = exc.details.get("retry_after")
        return _error_json(exc.code, exc.message, exc.status, exc.details,
                           {"Retry-After": str(retry_after)} if retry_after else None)
    if isinstance(exc, ValidationError):
        return error_response(invalid_input(exc))
    if isinstance(exc, (UnknownService, RpcTimeout, eventlet.Timeout)):
        return error_response(Unavailable("A service did not answer in time; try again shortly."))
    if isinstance(exc, ContainerBeingKilled):  # this gateway process is stopping; another answers the retry
        return error_response(Unavailable("The gateway is restarting; try again shortly."))
    if isinstance(exc, (kombu.exceptions.OperationalError, amqp.exceptions.ConnectionError, ConnectionError)):
        return error_response(Unavailable("The message broker cannot be reached; try again shortly."))
    if isinstance(exc, HTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.code, "http_error")
        return _error_json(code, exc.description or exc.name, exc.code)
    if isinstance(exc, RemoteError):
        log.error("unexpected error in a service: %s", exc.exc_type)
    else:
        log.error("unexpected error in the gateway: %s", type(exc).__name__, exc_info=exc)
    return _error_json("internal_error", "Something went wrong on our side.", 500)


class JsonWsgiApp(WsgiApp):
    """nameko's WsgiApp, but an unknown route or method answers in the error
    shape too; and every request gets its request id (the caller's
    X-Request-Id if it is a short safe token, else a new one), answered in the
    X-Request-Id header and in an error's body, and ends in one access line
    (the only line an expected refusal writes in the gateway)."""

    def __init__(self, server):
        super().__init__(server)
        self._routes: dict[tuple, tuple] = {}

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        request = Request(environ, shallow=True)
        request.request_id = logs.request_id_from(request.headers.get(logs.HTTP_HEADER))
        logs.bind_request_id(request.request_id)  # this connection's green thread: the checks before the worker
        route = None
        try:
            provider, values = self._route(environ)
            route = getattr(provider, "url", None)
            request.path_values = values
            response = provider.handle_request(request)
        except Exception as exc:
            response = error_response(exc)
        code = _stamp(response, request.request_id)
        _log_access(request, route, response.status_code, code, time.perf_counter() - started)
        return response(environ, start_response)

    def _route(self, environ) -> tuple:
        """The route and the path's values, for this method and path: werkzeug's
        match, remembered (its matcher was ~8 % of a refusal's CPU, and made a
        reference cycle each time). A miss raises as the match does, and is not
        remembered; past ROUTES_REMEMBERED paths (ids in them), it starts over."""
        key = (environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"))
        matched = self._routes.get(key)
        if matched is None:
            matched = self.url_map.bind_to_environ(environ).match()
            if len(self._routes) >= ROUTES_REMEMBERED:
                self._routes.clear()
            self._routes[key] = matched
        provider, values = matched
        return provider, dict(values)


def _stamp(response: Response, request_id: str) -> str | None:
    """The request id in the X-Request-Id header, and in an error's body (the
    one error shape has room: `error.request_id`). Returns the error's code."""
    response.headers[logs.HTTP_HEADER] = request_id
    if response.status_code < 400 or response.mimetype != "application/json" or response.is_streamed:
        return None
    if getattr(response, "stamped_id", None) == request_id:  # made by _error_json with it
        return response.error_code
    try:
        body = json.loads(response.get_data())
    except ValueError:
        return None
    if not (isinstance(body, dict) and isinstance(body.get("error"), dict)):
        return None
    body["error"]["request_id"] = request_id
    response.set_data(json.dumps(body, ensure_ascii=False))
    return body["error"].get("code")


def _log_access(request, route: str | None, status: int, code: str | None, seconds: float):
    """One line per request: what eventlet's access line said, with the route,
    the error's code and the request id. The query's names only, every value
    redacted: a stream's token, a receipt's code, a member search's name.
    A 5xx is a warning; what went wrong is logged by error_response."""
    query = "&".join(f"{name}=[redacted]" for name, _value in request.args.items(multi=True))
    path = request.path + (f"?{query}" if query else "")
    fields = {"method": request.method, "path": path, "route": route, "status": status,
              "duration_ms": round(seconds * 1000, 1), "client": request.remote_addr}
    if code:
        fields["code"] = code
    access_log.log(logging.WARNING if status >= 500 else logging.INFO, "%s %s %s%s", request.method, path, status,
                   f" {code}" if code else "", extra=fields)


class _RedactingLog:
    """eventlet's log (the access lines are JsonWsgiApp's), without the secrets
    a query may carry: the token of a stream (EventSource sends no headers) and
    a receipt's verification code; and without a traceback for a client that left before its answer was sent
    (as every closed event stream does): that is no fault of ours."""

    TOKEN = re.compile(r"((?:access_token|code)=)[^&\s\"]+")
    CLIENT_LEFT = ("BrokenPipeError", "ConnectionResetError", "ConnectionAbortedError")

    def __init__(self, logger):
        self.logger = logger

    def info(self, msg, *args):
        text = msg % args if args else msg
        if text.startswith("Traceback") and text.rstrip().rpartition("\n")[2].startswith(self.CLIENT_LEFT):
            self.logger.debug("a client closed its connection before its answer was sent")
            return
        self.logger.info(self.TOKEN.sub(r"\1[redacted]", text))

    def __getattr__(self, name):
        return getattr(self.logger, name)


class _ClosingProtocol(HttpOnlyProtocol):
    """nameko's HTTP protocol, but a connection whose client went away in the
    middle of an answer (a closed event stream) is closed at once. socketserver's
    finish() stops at the failed flush of the answer's buffer, before it closes
    the request's reader, and that reader kept the socket open until the garbage
    collector happened to find it: minutes (400 closed streams, over 12)."""

    def finish(self):
        try:
            super().finish()
        finally:
            self.rfile.close()
            self.connection.close()


def gateway_admission(config: dict) -> Admission:
    """The bound on one gateway process's API requests in flight: MAX_IN_FLIGHT,
    at most (and by default) max_workers - 2. Requests beyond max_workers would
    wait for a worker without bound, and the alert handler and the timer (the
    dead letters' depth) share that pool: some workers are kept for them (the
    live feed needs none: services/gateway/streams.py)."""
    most = max(1, int(config["max_workers"]) - WORKERS_KEPT_FOR_EVENTS)
    limit = min(int(config["MAX_IN_FLIGHT"]) or most, most)
    return admission(config, limit, "gateway")


def admission(config: dict, limit: int, scope: str) -> Admission:
    """An Admission of `limit` slots with the configured deadlines:
    ADMISSION_DEADLINE (env LINLI_GATEWAY_ADMISSION_DEADLINE), the longest a
    request may wait for a slot, in the gateway or for a service, and
    OVERLOAD_DEADLINE (LINLI_GATEWAY_OVERLOAD_DEADLINE), the longest expected
    wait a request may start once a queue has stood (Admission)."""
    return Admission(limit, float(config["ADMISSION_DEADLINE"]), scope,
                     overload_deadline=float(config["OVERLOAD_DEADLINE"]))


class JsonWebServer(WebServer):
    """nameko's web server, with the JSON error shape, a redacting access log,
    and one Admission for every API request this gateway process serves."""

    admission = Admission(0, 0, "gateway")

    def setup(self):
        super().setup()
        self.admission = gateway_admission(self.container.config)
        headers.install()  # each request's header lines parsed without the email package (headers.py)

    def start(self):
        """nameko's, but the port is this process's alone, and with a longer listen
        backlog than eventlet's 50. nameko listens with SO_REUSEPORT, so a second
        gateway on a taken port would share it silently (and answer for another
        stack) rather than fail at start. And a burst of connections at once (250
        clients) would see some dropped and retried by the kernel a second or more
        later; the kernel caps the backlog at net.core.somaxconn."""
        if not self._starting:
            self._starting = True
            self._sock = eventlet.listen(self.bind_addr, backlog=LISTEN_BACKLOG, reuse_port=False)
            self._sock.settimeout(None)  # as nameko: https://github.com/celery/kombu/issues/838
            self._serv = self.get_wsgi_server(self._sock, self.get_wsgi_app())
            self._gt = self.container.spawn_managed_thread(self.run)

    def get_wsgi_app(self):
        return JsonWsgiApp(self)

    def get_wsgi_server(self, sock, wsgi_app, **kwargs):
        server = super().get_wsgi_server(sock, wsgi_app, **kwargs | {"protocol": _ClosingProtocol})
        server.log = _RedactingLog(server.log)
        server.log_output = False  # JsonWsgiApp writes each request's access line
        return server

    def context_data_from_headers(self, request):
        """The worker's context: its request id, which nameko sends on with every RPC call."""
        return {logs.REQUEST_ID_KEY: request.request_id}


class ApiEntrypoint(HttpRequestHandler):
    """`@api("POST", "/cases", roles=ADMIN, body=CaseOpenSchema, response=CaseSchema, status=201)`

    The handler gets `request.principal` (None on public routes),
    `request.payload` and `request.query` (the body and query as loaded by the
    schemas), `request.body` and `request.query_params` (the same as sent, once
    valid: what to pass on over RPC, where the service loads them again),
    `request.idempotency_key` (on routes marked `idempotent`: the header, or
    one made for this request; on routes marked `key_required` the header, or
    a 400), and
    returns a dict (JSON with `status`), a (status, dict) pair, or a Response.
    """

    server = JsonWebServer()
    accounts = auth.AccountStates()
    devices = DeviceStates()

    def __init__(self, method: str, path: str, *, roles: tuple[str, ...] | None,
                 body: type[Schema] | None = None, query: type[Schema] | None = None,
                 response: type[Schema] | None = None, status: int = 200,
                 summary: str = "", prefix: str = API_PREFIX, in_openapi: bool = True,
                 idempotent: bool = False, key_required: bool = False, event_stream: bool = False,
                 download: bool | tuple[str, ...] = False, shed: bool = True, coalesced: str | None = None,
                 **kwargs):
        kwargs.setdefault("expected_exceptions", EXPECTED_ERRORS)
        super().__init__(method, prefix + path, **kwargs)
        self.path = prefix + path
        self.roles = roles
        self.body_schema = body
        self.query_schema = query
        self.response_schema = response
        self.status = status
        self.summary = summary
        self.in_openapi = in_openapi  # pages are not part of the API
        self.idempotent = idempotent or key_required  # honours an Idempotency-Key header (request.idempotency_key)
        self.key_required = key_required  # and takes no write without one
        # Answers with server-sent events; takes the token as ?access_token= too (EventSource sends no headers).
        self.event_stream = event_stream
        # Answers with a file (by ?format=) instead of JSON: True for CSV or XLSX, or the formats it makes.
        self.download = download
        # Refused with a 503 when the gateway is saturated (JsonWebServer.admission);
        # probes, metrics and the long-lived streams are always admitted.
        self.shed = shed and not event_stream
        # The service whose coalesced write (services/gateway/rpc.py COALESCED) the handler makes: a
        # request its bound would refuse is refused before the gateway authenticates and loads it.
        self.coalesced = coalesced
        self._coalesced_admission: Admission | None = None

    def setup(self):
        secret = self.container.config.get("JWT_SECRET") or ""
        if len(secret) < auth.MIN_SECRET_LENGTH:
            raise ConfigurationError(
                f"JWT_SECRET (env LINLI_JWT_SECRET) must be at least {auth.MIN_SECRET_LENGTH} characters")
        self.proxies = trusted_proxies(self.container.config)
        self._good_shapes: set = set()
        super().setup()

    def check_signature(self, args, kwargs):
        """nameko's check that the handler takes these arguments (the request
        and the path's values), once per shape: it depends only on how many
        arguments and which names, and inspect.getcallargs on every request
        was ~3 % of the gateway's CPU under load."""
        shape = (len(args), frozenset(kwargs))
        if shape not in self._good_shapes:
            super().check_signature(args, kwargs)
            self._good_shapes.add(shape)

    def handle_request(self, request):
        started = time.perf_counter()
        if self.shed:
            # What is left of this deadline, the request may wait for a service's slot (ServiceRpc). In all
            # it never waits past the burst deadline; under an overload, each scope's own is short.
            request.wait_until = time.monotonic() + self.server.admission.deadline_in_burst
            try:
                if self.coalesced is not None:
                    self.coalesced_admission().refuse_now(request.wait_until)
                    request.write_judged = self.coalesced  # its call takes a free slot without a second look
                with self.server.admission.admit():
                    response = self._answer(request)
            except Unavailable as exc:
                response = error_response(exc)
        else:
            response = self._answer(request)
        HTTP_REQUESTS.labels(self.path, self.method, response.status_code).inc()
        HTTP_SECONDS.labels(self.path).observe(time.perf_counter() - started)
        return response

    def coalesced_admission(self) -> Admission:
        """The bound of the coalesced write this route makes (ServiceRpc.grouped_admission)."""
        if self._coalesced_admission is None:
            self._coalesced_admission = next(
                dependency.grouped_admission for dependency in self.container.dependencies
                if getattr(dependency, "target_service", None) == self.coalesced
                and getattr(dependency, "grouped_admission", None) is not None)
        return self._coalesced_admission

    def _answer(self, request):
        request.shallow = False
        request.client_address = client_address(request, self.proxies)
        try:
            request.principal = self._authenticate(request)
            request.body, request.payload = self._load_body(request)
            request.query_params, request.query = self._load_query(request)
            request.idempotency_key = self._idempotency_key(request)
        except Exception as exc:
            return error_response(exc)
        return super().handle_request(request)

    def _idempotency_key(self, request) -> str | None:
        """The client's Idempotency-Key; without one, a key of this request's
        own, so that an RPC request the broker redelivers (after a restart)
        is still one write. Money and goods take no write without the client's
        key: a keyless retry after a timeout could not be told from a second gift."""
        if not self.idempotent:
            return None
        key = request.headers.get("Idempotency-Key")
        if key:
            refuse_unstorable({"Idempotency-Key": key})
            return key
        if self.key_required:
            raise IdempotencyKeyRequired(
                "Send an Idempotency-Key header (a new UUID per donation, dispatch, session or service "
                "record; the same one on a retry).",
                {"fields": {"Idempotency-Key": ["Required on this route."]}})
        return f"request-{uuid.uuid4().hex}"

    def _authenticate(self, request):
        if self.roles is None:
            return None
        token = auth.bearer_token(request, query_allowed=self.event_stream)
        if token is None:
            raise NotAuthenticated("Log in first: send 'Authorization: Bearer <token>'.")
        claims = auth.principal_from_token(self.container.config["JWT_SECRET"], token)
        states = self.devices if claims.get("device") else self.accounts
        principal = states.principal(claims)
        auth.authorize(principal, self.roles)
        if self.event_stream:
            # Asked again while the stream is open (streams.sse_response): a revoked
            # device, a disabled account or an ended session loses its open stream too.
            request.recheck = lambda: states.principal(claims)
        return principal

    def _load_body(self, request) -> tuple[dict | None, dict | None]:
        if self.body_schema is None:
            return None, None
        if (request.content_length or 0) > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"The body is larger than {MAX_BODY_BYTES} bytes.")
        raw = request.get_data(cache=True)
        if len(raw) > MAX_BODY_BYTES:  # a chunked body has no Content-Length
            raise PayloadTooLarge(f"The body is larger than {MAX_BODY_BYTES} bytes.")
        if raw or request.content_type:
            require_json(request)
        try:
            body = strict_json.loads(raw or b"null")
        except strict_json.NotStrictJson as exc:
            name = field_name(exc.key) if exc.key is not None else "_schema"
            raise InvalidInput(str(exc), {"fields": {name: [str(exc)]}})
        except ValueError:
            raise InvalidInput("The body is not valid JSON (UTF-8).")
        if not isinstance(body, dict):
            raise InvalidInput("The body must be a JSON object.")
        refuse_unstorable(body)
        return body, shared(self.body_schema).load(body)

    def _load_query(self, request) -> tuple[dict, dict]:
        refuse_unstorable(getattr(request, "path_values", None) or {})  # set by JsonWsgiApp
        repeated = sorted(name for name, values in request.args.lists() if len(values) > 1)
        if repeated:  # ?limit=5&limit=500: which one was meant?
            raise InvalidInput("The request has invalid fields.",
                               {"fields": {field_name(name): ["Given more than once."] for name in repeated}})
        refuse_unstorable(request.args.to_dict())
        schema = shared(self.query_schema) if self.query_schema is not None else None
        if self.in_openapi:  # an API route takes the query parameters it documents, no others
            known = set(schema.fields) if schema is not None else set()
            if self.event_stream:
                known.add("access_token")  # an EventSource's token (auth.bearer_token)
            unknown = sorted(set(request.args) - known)
            if unknown:
                raise InvalidInput("The request has invalid fields.",
                                   {"fields": {name: ["Unknown query parameter."] for name in unknown}})
        if schema is None:
            return {}, {}
        sent = {name: request.args.get(name) for name in schema.fields if name in request.args}
        return sent, schema.load(sent)

    def response_from_result(self, result):
        if isinstance(result, Response):
            return result
        if isinstance(result, tuple):
            status, payload = result
            return json_response(payload, status)
        return json_response(result, self.status)

    def response_from_exception(self, exc):
        return error_response(exc)


api = ApiEntrypoint.decorator


def require_json(request):
    """A body is JSON, said so: `application/json` (UTF-8, the only charset
    JSON has) or a `+json` type. Anything else is refused, never guessed at."""
    mimetype, charset = request.mimetype, request.mimetype_params.get("charset", "utf-8").lower()
    if (mimetype == "application/json" or mimetype.endswith("+json")) and charset in ("utf-8", "utf8"):
        return
    raise UnsupportedMediaType("Send the body as JSON, with 'Content-Type: application/json'.",
                               {"fields": {"Content-Type": ["Not application/json."]}})


def file_response(content: bytes, content_type: str, filename: str) -> Response:
    """A download: saved under `filename` (ASCII), never cached (it may hold names)."""
    return Response(content, content_type=content_type, headers={
        "Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"})


# Pages run only the scripts and styles the gateway serves from /static/: no inline script, no other
# site's; they talk only to this origin, cannot be framed, and tell no other site where they were.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
                               "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
                               "frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


def html_response(html: str) -> Response:
    return Response(html, mimetype="text/html", headers={"Cache-Control": "no-cache", **PAGE_HEADERS})


def static_response(request, body: bytes, mimetype: str) -> Response:
    """A page's script, style or licence: revalidated on each load (no-cache), so an
    upgrade is seen at the next reload while an unchanged file costs a 304 at most."""
    response = Response(body, mimetype=mimetype, headers={"Cache-Control": "no-cache", **PAGE_HEADERS})
    response.add_etag()
    return response.make_conditional(request)
