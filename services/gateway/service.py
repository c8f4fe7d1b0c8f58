"""The gateway: authenticates, validates the HTTP shape, calls the services
over RPC and maps their errors to HTTP. It owns accounts; no domain logic."""
from __future__ import annotations

import logging

import eventlet
from kombu import Connection
from nameko.dependency_providers import Config
from nameko.events import BROADCAST, event_handler
from sqlalchemy import select

from services import contracts
from services.common.db import Database
from services.common.errors import InvalidInput, NotAuthenticated, NotFound
from services.common.pagination import PageSchema, paginate
from services.common.service import KernelEntrypoints
from services.contracts import notifications as notification_events
from services.gateway import accounts, auth
from services.gateway.auth import ADMIN, ANY_ROLE, MEMBER_OR_ADMIN
from services.gateway.http import api, error_payload, json_response
from services.gateway.models import Account, kernel
from services.gateway.openapi import build_spec
from services.gateway.rpc import ServiceRpc
from services.gateway.schemas import (
    HealthSchema, MemberCreateSchema, MemberListSchema, MemberSchema, ReadySchema,
    TokenRequestSchema, TokenSchema,
)
from services.gateway.streams import AlertStreams, sse_response
from services.notifications.schemas import AlertListSchema, AlertSchema
from services.welfare.schemas import (
    CaseListSchema, CaseOpenSchema, CaseSchema, HouseholdCreateSchema, HouseholdSchema,
)

log = logging.getLogger(__name__)

DEFAULT_TOKEN_TTL = 12 * 3600
READY_TIMEOUT = 3.0
BACKEND_SERVICES = ("welfare", "notifications")


class GatewayService(KernelEntrypoints):
    name = "gateway"
    config = Config()
    db = Database(kernel)
    welfare = ServiceRpc("welfare")
    notifications = ServiceRpc("notifications")
    alert_streams = AlertStreams()

    # -- accounts ---------------------------------------------------------------

    @api("POST", "/auth/token", roles=None, body=TokenRequestSchema, response=TokenSchema)
    def issue_token(self, request):
        """Exchange a username and password for a bearer token."""
        account = accounts.authenticate(self.db.session, request.payload["username"],
                                        request.payload["password"])
        if account is None:
            raise NotAuthenticated("Wrong username or password.")
        return auth.issue_token(self.config["JWT_SECRET"], account.id, account.roles,
                                int(self.config.get("TOKEN_TTL_SECONDS", DEFAULT_TOKEN_TTL)))

    @api("POST", "/members", roles=ADMIN, body=MemberCreateSchema, response=MemberSchema, status=201)
    def register_member(self, request):
        """Register a member, party member, admin or dashboard viewer."""
        with self.db.unit_of_work() as uow:
            account = accounts.register(uow, request.payload)
            uow.commit()
        return MemberSchema().dump(account)

    @api("GET", "/members", roles=ADMIN, query=PageSchema, response=MemberListSchema)
    def list_members(self, request):
        """Every account, newest first."""
        result = paginate(self.db.session, select(Account), request.query, Account.created_at, Account.id)
        return MemberListSchema().dump(result)

    @api("GET", "/members/<member_id>", roles=ADMIN, response=MemberSchema)
    def get_member(self, request, member_id):
        """One account."""
        return MemberSchema().dump(self._account(member_id))

    @api("GET", "/me", roles=ANY_ROLE, response=MemberSchema)
    def get_me(self, request):
        """The caller's own profile."""
        return MemberSchema().dump(self._account(request.principal["id"]))

    def _account(self, member_id: str) -> Account:
        account = self.db.session.get(Account, member_id)
        if account is None:
            raise NotFound("No such member.")
        return account

    # -- alerts -----------------------------------------------------------------

    @api("GET", "/me/alerts", roles=ANY_ROLE, query=PageSchema, response=AlertListSchema)
    def list_my_alerts(self, request):
        """The caller's alert inbox, newest first."""
        return self.notifications.list_alerts(request.principal["id"], request.query)

    @api("POST", "/me/alerts/<alert_id>/ack", roles=ANY_ROLE, response=AlertSchema)
    def ack_my_alert(self, request, alert_id):
        """Mark one of the caller's alerts as read."""
        return self.notifications.ack_alert(request.principal["id"], alert_id)

    @api("GET", "/me/alerts/stream", roles=ANY_ROLE)
    def stream_my_alerts(self, request):
        """The caller's new alerts, live, as server-sent events (`event: alert`).
        A reconnecting client sends Last-Event-ID and first gets what it missed.
        EventSource may pass the token as `?access_token=`."""
        member_id = request.principal["id"]
        return sse_response(request, self.alert_streams, member_id,
                            missed=lambda last_id: self.notifications.alerts_after(member_id, last_id))

    @event_handler("notifications", notification_events.ALERT_CREATED,
                   handler_type=BROADCAST, reliable_delivery=False)
    def on_alert_created(self, envelope):
        """Every gateway instance hears every alert and passes it to the
        member's open streams. A missed one is still in the inbox."""
        data = contracts.validate(envelope)["data"]
        self.alert_streams.publish(data["member_id"], {
            "id": data["alert_id"], "kind": data["kind"], "message": data["message"],
            "ref": data["ref"], "created_at": data["created_at"], "acked_at": None,
        })

    # -- households and cases --------------------------------------------------------

    @api("POST", "/households", roles=ADMIN, body=HouseholdCreateSchema, response=HouseholdSchema, status=201)
    def create_household(self, request):
        """A household in hardship and its people."""
        return self.welfare.create_household(request.payload, request.principal)

    @api("GET", "/households/<household_id>", roles=ADMIN, response=HouseholdSchema)
    def get_household(self, request, household_id):
        """One household and its people."""
        return self.welfare.get_household(household_id, request.principal)

    @api("POST", "/cases", roles=ADMIN, body=CaseOpenSchema, response=CaseSchema, status=201)
    def open_case(self, request):
        """Open a hardship case, assigned to a party member, who is alerted."""
        self._require_party_member(request.payload["assignee_id"])
        return self.welfare.open_case(request.payload, request.principal)

    @api("GET", "/cases", roles=MEMBER_OR_ADMIN, query=PageSchema, response=CaseListSchema)
    def list_cases(self, request):
        """Cases, newest first: an admin sees all, a member only their own."""
        return self.welfare.list_cases(request.principal, request.query)

    @api("GET", "/cases/<case_id>", roles=MEMBER_OR_ADMIN, response=CaseSchema)
    def get_case(self, request, case_id):
        """One case; another member's case is a 404."""
        return self.welfare.get_case(case_id, request.principal)

    def _require_party_member(self, member_id: str):
        """Accounts live here, so the gateway resolves who an assignee is."""
        account = self.db.session.get(Account, member_id)
        if account is None or not account.party_member:
            message = "No registered party member has this id."
            raise InvalidInput(message, {"fields": {"assignee_id": [message]}})

    # -- the API itself and operations ------------------------------------------

    @api("GET", "/openapi.json", roles=None)
    def openapi(self, request):
        """This document."""
        return build_spec(type(self))

    @api("GET", "/health", roles=None, response=HealthSchema)
    def health(self, request):
        """Liveness: the gateway process answers."""
        return {"status": "ok"}

    @api("GET", "/ready", roles=None, response=ReadySchema)
    def ready(self, request):
        """Readiness: the broker and every service answer."""
        checks = {"broker": self._check_broker()}
        pool = eventlet.GreenPool()
        for service, result in zip(BACKEND_SERVICES, pool.imap(self._check_service, BACKEND_SERVICES), strict=True):
            checks[service] = result
        ready = all(result == "ok" for result in checks.values())
        body = {"status": "ready" if ready else "not_ready", "checks": checks}
        if ready:
            return body
        return json_response({**error_payload("not_ready", "Not every part answers yet.", checks), **body}, 503)

    def _check_broker(self) -> str:
        try:
            with eventlet.Timeout(READY_TIMEOUT), Connection(self.config["AMQP_URI"]) as connection:
                connection.ensure_connection(max_retries=1)
            return "ok"
        except (Exception, eventlet.Timeout) as exc:
            return f"unavailable ({type(exc).__name__})"

    def _check_service(self, service: str) -> str:
        try:
            with eventlet.Timeout(READY_TIMEOUT):
                getattr(self, service).ping()
            return "ok"
        except (Exception, eventlet.Timeout) as exc:
            return f"unavailable ({type(exc).__name__})"
