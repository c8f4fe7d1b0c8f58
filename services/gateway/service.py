"""The gateway: authenticates, validates the HTTP shape, calls the services
over RPC and maps their errors to HTTP. It owns accounts; no domain logic."""
from __future__ import annotations

import json
import logging
import uuid
from functools import partial
from html import escape
from pathlib import Path

import eventlet
from kombu import Producer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from werkzeug.wrappers import Response
from nameko.dependency_providers import Config
from nameko.events import BROADCAST, event_handler
from nameko.exceptions import RpcTimeout
from nameko.rpc import get_rpc_exchange
from nameko.timer import timer
from sqlalchemy import select, text

from services import contracts
from services.common import broker
from services.common.clock import isoformat, local_today, month_of, naive_utcnow
from services.common.db import Database
from services.common.deadletters import DeadLetterDepths
from services.common.errors import (
    InvalidInput, LinliError, NotAuthenticated, NotFound, TooManyRequests, Unavailable,
)
from services.common.pagination import PageSchema, paginate
from services.common.service import KernelEntrypoints
from services.contracts import notifications as notification_events
from services.contracts.categories import KINDS, OWNERS
from services.gateway import accounts, auth, devices, exports
from services.gateway.auth import ADMIN, ANY_ROLE, MEMBER_OR_ADMIN, WALL
from services.gateway.http import api, error_payload, file_response, html_response, json_response, static_response
from services.gateway.models import Account, AuditEntry, kernel
from services.gateway.openapi import build_spec
from services.gateway.passwords import PasswordHashing
from services.gateway.rpc import ServiceRpc
from services.gateway.schemas import (
    AUDIT_FILTERS, AuditListSchema, AuditQuerySchema, CategoriesSchema, CategoryCreateSchema, CategorySchema,
    DeviceCreateSchema, DeviceIssuedSchema, DeviceListSchema, DeviceSchema, DonationListQuerySchema,
    ExportQuerySchema, FeedQuerySchema, HealthSchema, MemberCreateSchema, MemberListSchema,
    MemberQuerySchema, MemberSchema, MemberUpdateSchema, MonthlyReportQuerySchema, PasswordChangeSchema,
    PasswordSetSchema, ReadySchema, ServiceListQuerySchema, ServicesHealthSchema, TokenRequestSchema, TokenSchema,
)
from services.gateway.streams import FEED, LiveFeed, Streams, feed_queue, sse_response
from services.donations.schemas import (
    CampaignCreateSchema, CampaignListSchema, CampaignSchema, CampaignUpdateSchema, DispatchCreateSchema,
    DispatchListSchema, DispatchSchema, DonationCreateSchema, DonationListSchema, DonationSchema,
    ReceiptQuerySchema, ReceiptSchema, VoidSchema,
)
from services.notifications.schemas import AlertListSchema, AlertSchema, WebhookSchema, WebhookSetSchema
from services.patrol.schemas import (
    CoverageQuerySchema, CoverageSchema, IncidentListSchema, IncidentQuerySchema, IncidentReportSchema,
    IncidentResolveSchema, IncidentSchema, PatrolCorrectSchema, PatrolFinishSchema, PatrolListSchema,
    PatrolQuerySchema, PatrolSchema, PatrolStartSchema, TeamSchema, ZoneCreateSchema, ZoneListSchema, ZoneSchema,
)
from services.volunteers.schemas import (
    GroupCreateSchema, GroupListSchema, GroupQuerySchema, GroupSchema, GroupUpdateSchema, MyServiceQuerySchema,
    MyServiceSchema, ServiceCreateSchema, ServiceListSchema, ServiceRecordSchema, ServiceTotalsSchema,
    SessionCreateSchema, SessionListSchema, SessionQuerySchema, SessionSchema, TotalsQuerySchema,
)
from services.welfare.schemas import (
    CaseAssignSchema, CaseCloseSchema, CaseDismissSchema, CaseEraseSchema, CaseListSchema, CaseOpenSchema,
    CaseQuerySchema, CaseReopenSchema, CaseSchema, ConsentCreateSchema, ConsentSchema, HouseholdCreateSchema,
    HouseholdDetailSchema, HouseholdExportSchema, HouseholdListSchema, HouseholdQuerySchema, HouseholdSchema,
    HouseholdUpdateSchema, RecipientListSchema, ReferralCreateSchema, ReferralDecisionSchema, ReferralSchema,
    ReferralStageSchema, VisitCreateSchema, VisitSchema,
)

log = logging.getLogger(__name__)

PAGES_DIR = Path(__file__).parent / "pages"
PAGES = {name: (PAGES_DIR / f"{name}.html").read_text(encoding="utf-8") for name in ("dashboard", "public", "app")}
# The pages' scripts, styles and vendored libraries, read once: /static/<path> serves exactly these.
STATIC_TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css", ".txt": "text/plain",
                ".md": "text/plain", ".svg": "image/svg+xml"}
STATIC = {path.relative_to(PAGES_DIR / "static").as_posix(): (path.read_bytes(), STATIC_TYPES[path.suffix])
          for path in sorted((PAGES_DIR / "static").rglob("*")) if path.suffix in STATIC_TYPES}
# What the public page shows of a campaign: totals and where goods went, nothing about people.
PUBLIC_CAMPAIGN_FIELDS = ("id", "name", "goal_fen", "starts_on", "ends_on", "status", "totals",
                          "progress_percent", "goods_sent", "dispatches")

# One queue per gateway process, bound to every service's event exchange while a feed stream is open.
FEED_QUEUE = feed_queue(contracts.PRODUCERS)

PROBE_TIMEOUT = 3.0  # the dashboard's parts
# A dead letter shows in linli_dead_letter_depth within this many seconds (a
# constant: nameko fixes a timer's interval when the class is defined).
DEAD_LETTER_REFRESH_SECONDS = 15
READY_TIMEOUT = 0.8  # readiness and each service's health: a probe's answer within a second
BACKEND_SERVICES = ("patrol", "donations", "welfare", "notifications", "volunteers")
REPORT_PARTS = ("patrol", "donations", "welfare", "volunteers")  # each answers monthly_summary(month)


class GatewayService(KernelEntrypoints):
    name = "gateway"
    config = Config()
    db = Database(kernel)
    donations = ServiceRpc("donations")
    patrol = ServiceRpc("patrol")
    welfare = ServiceRpc("welfare")
    notifications = ServiceRpc("notifications")
    volunteers = ServiceRpc("volunteers")
    passwords = PasswordHashing()
    alert_streams = Streams()
    event_feed = LiveFeed(FEED_QUEUE, contracts.for_feed)
    dead_letter_depths = DeadLetterDepths(contracts.SUBSCRIPTIONS)

    # -- accounts ---------------------------------------------------------------

    @api("POST", "/auth/token", roles=None, body=TokenRequestSchema, response=TokenSchema)
    def issue_token(self, request):
        """Exchange a username and password for a bearer token. After a few
        failures, one username from one address waits longer before each try
        (429 with Retry-After, answered at once)."""
        account = self._check_password(request, request.payload["username"], request.payload["password"])
        if account is None:
            raise NotAuthenticated("Wrong username or password.")
        return self._token_for(account)

    @api("POST", "/members", roles=ADMIN, body=MemberCreateSchema, response=MemberSchema, status=201)
    def register_member(self, request):
        """Register a member, party member, admin or dashboard viewer. The
        password: at least 10 characters, not a common one."""
        password_hash = self.passwords.hash_new(request.payload["password"])
        with self.db.unit_of_work() as uow:
            account = accounts.register(uow, request.payload, password_hash)
            uow.commit()
        return MemberSchema().dump(account)

    @api("PATCH", "/members/<member_id>", roles=ADMIN, body=MemberUpdateSchema, response=MemberSchema)
    def update_member(self, request, member_id):
        """Change an account: `active: false` disables it (no login; its tokens
        are refused within a second), roles, party membership, name, phone,
        compound. The last active admin cannot be disabled or lose the role (409)."""
        with self.db.unit_of_work() as uow:
            account = accounts.update_member(uow, member_id, request.payload)
            uow.commit()
        return MemberSchema().dump(account)

    @api("POST", "/members/<member_id>/password", roles=ADMIN, body=PasswordSetSchema, response=MemberSchema)
    def set_member_password(self, request, member_id):
        """Set a member's password (a forgotten one): every session of theirs ends."""
        self._account(member_id)  # a 404 before the hashing
        password_hash = self.passwords.hash_new(request.payload["new_password"])
        session = self.db.session
        account = session.get(Account, member_id, with_for_update=True, populate_existing=True)
        accounts.set_password(session, account, password_hash)
        session.commit()
        return MemberSchema().dump(account)

    @api("POST", "/me/password", roles=ANY_ROLE, body=PasswordChangeSchema, response=TokenSchema)
    def change_my_password(self, request):
        """Change one's own password: one's other sessions end; the answer is a
        new token for this one. A wrong current password counts as a failed login."""
        me = self._account(request.principal["id"])
        if self._check_password(request, me.username, request.payload["current_password"]) is None:
            message = "That is not your current password."
            raise InvalidInput(message, {"fields": {"current_password": [message]}})
        password_hash = self.passwords.hash_new(request.payload["new_password"])
        session = self.db.session
        account = session.get(Account, me.id, with_for_update=True, populate_existing=True)
        accounts.set_password(session, account, password_hash)
        session.commit()
        return self._token_for(account)

    def _check_password(self, request, username: str, password: str) -> Account | None:
        """The active account if the password is right, else None; refused at
        once (429) while this username and address must wait. The hash is
        checked off the hub; no slot free in time: 503."""
        session, address, now = self.db.session, request.client_address, naive_utcnow()
        wait = accounts.claim_login(session, address, username, now, accounts.LoginLimits.from_config(self.config))
        if wait:
            raise TooManyRequests("Too many failed logins: try again later.", {"retry_after": wait})
        try:
            with self.passwords.slot():
                account = accounts.authenticate(session, username, password, check=self.passwords.check)
        except Unavailable:
            accounts.login_not_tried(session, address, username)
            raise
        if account is not None:
            accounts.login_succeeded(session, address, username)
        return account

    def _token_for(self, account: Account) -> dict:
        return auth.issue_token(self.config["JWT_SECRET"], account.id, account.roles,
                                int(self.config["TOKEN_TTL_SECONDS"]),
                                session_version=account.session_version)

    @api("GET", "/members", roles=ADMIN, query=MemberQuerySchema, response=MemberListSchema)
    def list_members(self, request):
        """Accounts, newest first: `q` finds part of a name or username (any
        case) or of a phone (spaces and dashes ignored); `role`, `compound`,
        `party_member`, `active` narrow the list. Each search with `q` is
        audited (`member_search`, with its filters: GET /audit?source=accounts)."""
        filters = {name: value for name, value in request.query.items()
                   if name not in ("limit", "cursor") and value is not None}
        session = self.db.session
        result = paginate(session, accounts.search(filters), request.query, Account.created_at, Account.id)
        if "q" in filters:
            accounts.audit_search(session, request.principal["id"], filters)
            session.commit()
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
        return self.notifications.list_alerts(request.principal["id"], request.query_params)

    @api("POST", "/me/alerts/<alert_id>/ack", roles=ANY_ROLE, response=AlertSchema)
    def ack_my_alert(self, request, alert_id):
        """Mark one of the caller's alerts as read."""
        return self.notifications.ack_alert(request.principal["id"], alert_id)

    @api("GET", "/me/alerts/stream", roles=ANY_ROLE, event_stream=True)
    def stream_my_alerts(self, request):
        """The caller's new alerts, live, as server-sent events (`event: alert`).
        A reconnecting client sends Last-Event-ID and first gets what it missed.
        EventSource may pass the token as `?access_token=`."""
        member_id = request.principal["id"]
        return sse_response(request, self.alert_streams, member_id, "alert",
                            missed=lambda last_id: self.notifications.alerts_after(member_id, last_id))

    @api("PUT", "/me/webhook", roles=ANY_ROLE, body=WebhookSetSchema, response=WebhookSchema)
    def set_my_webhook(self, request):
        """Send one's alerts to a URL too (an SMS or chat gateway), signed as
        Standard Webhooks do (`webhook-id`, `webhook-timestamp`,
        `webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>`) with
        the `whsec_` secret shown when the webhook is first set; per-kind
        on/off; quiet hours hold all but urgent alerts. The URL must be https
        and lead to a public address (400 naming `url` otherwise); redirects
        are not followed. Deprecated, sent for one more release:
        `X-Linli-Signature: sha256=<hex HMAC-SHA256 of the body>`."""
        return self.notifications.set_webhook(request.principal["id"], request.body)

    @api("GET", "/me/webhook", roles=ANY_ROLE, response=WebhookSchema)
    def get_my_webhook(self, request):
        """One's webhook settings (the secret is not shown again)."""
        return self.notifications.get_webhook(request.principal["id"])

    @api("DELETE", "/me/webhook", roles=ANY_ROLE)
    def delete_my_webhook(self, request):
        """Stop sending alerts out."""
        return self.notifications.delete_webhook(request.principal["id"])

    @event_handler("notifications", notification_events.ALERT_CREATED,
                   handler_type=BROADCAST, reliable_delivery=False)
    def on_alert_created(self, envelope):
        """Every gateway instance hears every alert and passes it to the
        member's open streams. A missed one is still in the inbox."""
        data = contracts.validate(envelope)["data"]
        self.alert_streams.publish(data["member_id"], {
            "id": data["alert_id"], "kind": data["kind"], "message": data["message"],
            "compound": data["compound"], "ref": data["ref"], "created_at": data["created_at"], "acked_at": None,
        })

    # -- zones, teams, patrols and incidents -------------------------------------

    @api("POST", "/zones", roles=ADMIN, body=ZoneCreateSchema, response=ZoneSchema, status=201)
    def create_zone(self, request):
        """A patrol zone and its compounds (a compound belongs to one zone at most)."""
        return self.patrol.create_zone(request.body, request.principal)

    @api("GET", "/zones", roles=ANY_ROLE, query=PageSchema, response=ZoneListSchema)
    def list_zones(self, request):
        """Zones with their compounds and teams, newest first."""
        return self.patrol.list_zones(request.query_params)

    @api("GET", "/zones/coverage", roles=ANY_ROLE, query=CoverageQuerySchema, response=CoverageSchema)
    def zone_coverage(self, request):
        """The last patrol of every zone, and which went unpatrolled for `days`."""
        return self.patrol.coverage(request.query_params)

    @api("GET", "/zones/<zone_id>", roles=ANY_ROLE, response=ZoneSchema)
    def get_zone(self, request, zone_id):
        """One zone."""
        return self.patrol.get_zone(zone_id)

    @api("PUT", "/zones/<zone_id>/team", roles=ADMIN, body=TeamSchema, response=ZoneSchema)
    def assign_team(self, request, zone_id):
        """Set the leader and members of a zone's team (all registered members)."""
        team = request.payload
        self._require_members("leader_id", [team["leader_id"]])
        self._require_members("member_ids", team["member_ids"])
        return self.patrol.assign_team(zone_id, request.body, request.principal)

    @api("POST", "/patrols", roles=MEMBER_OR_ADMIN, body=PatrolStartSchema, response=PatrolSchema, status=201,
         idempotent=True)
    def start_patrol(self, request):
        """Start a patrol shift in one's own zone (one at a time)."""
        return self.patrol.start_patrol(request.body, request.principal, idempotency_key=request.idempotency_key)

    @api("POST", "/patrols/<patrol_id>/finish", roles=MEMBER_OR_ADMIN, body=PatrolFinishSchema,
         response=PatrolSchema, idempotent=True)
    def finish_patrol(self, request, patrol_id):
        """Finish one's patrol, with notes."""
        return self.patrol.finish_patrol(patrol_id, request.body, request.principal,
                                         idempotency_key=request.idempotency_key)

    @api("POST", "/patrols/<patrol_id>/correct", roles=ADMIN, body=PatrolCorrectSchema, response=PatrolSchema)
    def correct_patrol(self, request, patrol_id):
        """The office sets a finished patrol's times right (one closed automatically
        past the cap, a wrong tap): finished after started, at most 24 hours, not in
        the future. It then counts those times; who corrected it, when and why are kept."""
        return self.patrol.correct_patrol(patrol_id, request.body, request.principal)

    @api("GET", "/patrols", roles=MEMBER_OR_ADMIN, query=PatrolQuerySchema, response=PatrolListSchema)
    def list_patrols(self, request):
        """Patrol shifts, newest first; filter by zone, member, active. Notes
        only to the zone's team, the member on patrol and admins (audited)."""
        return self.patrol.list_patrols(request.principal, request.query_params)

    @api("POST", "/incidents", roles=MEMBER_OR_ADMIN, body=IncidentReportSchema, response=IncidentSchema,
         status=201, idempotent=True, coalesced="patrol")
    def report_incident(self, request):
        """A problem found on patrol; the zone's leader is alerted at once."""
        return self.patrol.report_incident(request.body, request.principal,
                                          idempotency_key=request.idempotency_key)

    @api("GET", "/incidents", roles=MEMBER_OR_ADMIN, query=IncidentQuerySchema, response=IncidentListSchema)
    def list_incidents(self, request):
        """Incidents, newest first; filter by zone, status, reporter, and time (since, until).
        Descriptions only to the zone's team, the reporter and admins (audited)."""
        return self.patrol.list_incidents(request.principal, request.query_params)

    @api("GET", "/incidents/<incident_id>", roles=MEMBER_OR_ADMIN, response=IncidentSchema)
    def get_incident(self, request, incident_id):
        """One incident; its description and resolution only to the zone's team,
        the reporter and admins (each such read audited), else null."""
        return self.patrol.get_incident(incident_id, request.principal)

    @api("POST", "/incidents/<incident_id>/ack", roles=MEMBER_OR_ADMIN, response=IncidentSchema)
    def acknowledge_incident(self, request, incident_id):
        """The zone's leader (or the office, for a leader who is away) has seen
        it: it will not escalate. `acked_by` records who."""
        return self.patrol.acknowledge_incident(incident_id, request.principal)

    @api("POST", "/incidents/<incident_id>/resolve", roles=MEMBER_OR_ADMIN, body=IncidentResolveSchema,
         response=IncidentSchema, idempotent=True)
    def resolve_incident(self, request, incident_id):
        """How the problem was settled (the zone's leader, or the office)."""
        return self.patrol.resolve_incident(incident_id, request.body, request.principal,
                                            idempotency_key=request.idempotency_key)

    # -- donation drives ---------------------------------------------------------------

    @api("POST", "/campaigns", roles=ADMIN, body=CampaignCreateSchema, response=CampaignSchema, status=201,
         idempotent=True)
    def create_campaign(self, request):
        """Open a donation drive with a goal in fen and its dates."""
        return self.donations.create_campaign(request.body, request.principal,
                                              idempotency_key=request.idempotency_key)

    @api("GET", "/campaigns", roles=ANY_ROLE, query=PageSchema, response=CampaignListSchema)
    def list_campaigns(self, request):
        """Drives with their live totals, newest first."""
        return self.donations.list_campaigns(request.query_params)

    @api("GET", "/campaigns/<campaign_id>", roles=ANY_ROLE, response=CampaignSchema)
    def get_campaign(self, request, campaign_id):
        """A drive with live totals (cash, items per category, donations) and progress."""
        return self.donations.get_campaign(campaign_id)

    @api("PATCH", "/campaigns/<campaign_id>", roles=ADMIN, body=CampaignUpdateSchema, response=CampaignSchema)
    def update_campaign(self, request, campaign_id):
        """Change a drive's name, goal or dates (only the fields sent, by the
        rules of opening one). A closed drive can only be renamed (409). A goal
        lowered to what was raised announces goal_reached, if it never was."""
        return self.donations.update_campaign(campaign_id, request.body, request.principal)

    @api("GET", "/campaigns/<campaign_id>/summary", roles=ADMIN, query=ExportQuerySchema, download=True)
    def campaign_public_summary(self, request, campaign_id):
        """The drive as the public page shows it (totals, goods per category, goods
        sent and where); with `?format=csv` or `xlsx` as a file to post or print."""
        campaign = self.donations.campaign_summary(campaign_id)
        public = {key: campaign[key] for key in PUBLIC_CAMPAIGN_FIELDS}
        if "format" not in request.query:
            return public
        rows = exports.summary_rows(public, self._goods_labels())
        return self._export(request.query["format"], exports.SUMMARY_HEADER, rows, campaign["code"], "summary")

    @api("POST", "/campaigns/<campaign_id>/close", roles=ADMIN, response=CampaignSchema)
    def close_campaign(self, request, campaign_id):
        """Stop taking donations (goods can still be dispatched)."""
        return self.donations.close_campaign(campaign_id, request.principal)

    @api("POST", "/campaigns/<campaign_id>/donations", roles=MEMBER_OR_ADMIN, body=DonationCreateSchema,
         response=DonationSchema, status=201, key_required=True, coalesced="donations")
    def record_donation(self, request, campaign_id):
        """Record cash (integer fen) or goods; answers with the receipt. An
        Idempotency-Key header is required: the same key again returns the first answer."""
        return self.donations.record_donation(campaign_id, request.body, request.principal,
                                              idempotency_key=request.idempotency_key)

    @api("GET", "/campaigns/<campaign_id>/donations", roles=MEMBER_OR_ADMIN, query=DonationListQuerySchema,
         response=DonationListSchema, download=True)
    def list_donations(self, request, campaign_id):
        """Donations, newest first; an anonymous donor's name is never kept. With
        `?format=csv` or `xlsx` (admin): the whole ledger as a file, oldest first,
        voided gifts too, with donors' names; each export is audited
        (GET /audit?source=donations)."""
        fmt = request.query.get("format")
        if fmt is None:
            return self.donations.list_donations(campaign_id, {key: value for key, value in
                                                               request.query_params.items() if key != "format"})
        ledger = self.donations.ledger(campaign_id, request.principal)  # the office only: others get a 403
        rows = exports.ledger_rows(ledger, self._goods_labels())
        return self._export(fmt, exports.LEDGER_HEADER, rows, ledger["campaign"]["code"], "ledger")

    def _goods_labels(self) -> dict[str, str]:
        """Goods categories by the community's words, for a file people read: code -> "衣物 Clothing"."""
        return {c["code"]: f"{c['label_zh']} {c['label_en']}" for c in self.donations.list_categories()}

    def _export(self, fmt: str, header: tuple, rows: list[tuple], code: str, what: str):
        return file_response(exports.render(fmt, header, rows, what), exports.CONTENT_TYPES[fmt],
                             exports.filename(f"linli-{code}", what, fmt=fmt))

    @api("POST", "/campaigns/<campaign_id>/donations/<receipt_no>/void", roles=ADMIN, body=VoidSchema,
         response=DonationSchema, idempotent=True)
    def void_donation(self, request, campaign_id, receipt_no):
        """Void a gift recorded in error, with the reason: the drive's totals
        and stock go down; the receipt keeps its number and shows it voided.
        409 if it is voided already, or if its goods were dispatched so that
        too few are left in stock (then nothing changes)."""
        return self.donations.void_donation(campaign_id, receipt_no, request.body, request.principal,
                                            idempotency_key=request.idempotency_key)

    @api("GET", "/campaigns/<campaign_id>/donations/<receipt_no>", roles=MEMBER_OR_ADMIN,
         response=DonationSchema)
    def get_donation(self, request, campaign_id, receipt_no):
        """A receipt again, with its verification code, to print it anew."""
        return self.donations.get_donation(campaign_id, receipt_no)

    @api("POST", "/campaigns/<campaign_id>/dispatches", roles=ADMIN, body=DispatchCreateSchema,
         response=DispatchSchema, status=201, key_required=True)
    def dispatch_goods(self, request, campaign_id):
        """Send goods to a place or to a hardship case; 409 past the stock. An
        Idempotency-Key header is required."""
        if request.payload["case_id"] is not None:
            try:  # a draft, closed or dismissed case: welfare's 409, naming case_id
                self.welfare.check_goods_recipient(request.payload["case_id"], request.principal)
            except NotFound:
                raise InvalidInput("No such case.", {"fields": {"case_id": ["No case has this id."]}})
        return self.donations.dispatch(campaign_id, request.body, request.principal,
                                       idempotency_key=request.idempotency_key)

    @api("GET", "/campaigns/<campaign_id>/dispatches", roles=MEMBER_OR_ADMIN, query=PageSchema,
         response=DispatchListSchema)
    def list_dispatches(self, request, campaign_id):
        """Goods sent out, newest first."""
        return self.donations.list_dispatches(campaign_id, request.query_params)

    @api("GET", "/receipts/<receipt_no>", roles=None, query=ReceiptQuerySchema, response=ReceiptSchema)
    def get_receipt(self, request, receipt_no):
        """Public, no login: a receipt by its number and verification code
        (`?code=`): amount or goods, date, campaign, and where such goods were
        sent. At most RECEIPT_LOOKUPS per RECEIPT_WINDOW_SECONDS from one
        address (429 with Retry-After), so codes cannot be guessed."""
        session = self.db.session
        wait = accounts.count_in_window(session, "receipt", request.client_address, naive_utcnow(),
                                        int(self.config["RECEIPT_LOOKUPS"]),
                                        int(self.config["RECEIPT_WINDOW_SECONDS"]))
        session.commit()
        if wait:
            raise TooManyRequests("Too many receipt lookups from here: try again later.", {"retry_after": wait})
        return self.donations.get_receipt(receipt_no, request.query_params)

    # -- households and cases --------------------------------------------------------

    @api("POST", "/households", roles=ADMIN, body=HouseholdCreateSchema, response=HouseholdDetailSchema, status=201,
         idempotent=True)
    def create_household(self, request):
        """A household in hardship and its people."""
        return self.welfare.create_household(request.body, request.principal,
                                            idempotency_key=request.idempotency_key)

    @api("GET", "/households", roles=ADMIN, query=HouseholdQuerySchema, response=HouseholdListSchema)
    def list_households(self, request):
        """Households with their people, newest first; `compound`, and `q`: part
        of the address or of anyone's name (any case). Each household listed is
        audited (`household_search`)."""
        return self.welfare.list_households(request.principal, request.query_params)

    @api("GET", "/households/<household_id>", roles=ADMIN, response=HouseholdDetailSchema)
    def get_household(self, request, household_id):
        """One household, its people and their current consents."""
        return self.welfare.get_household(household_id, request.principal)

    @api("PATCH", "/households/<household_id>", roles=ADMIN, body=HouseholdUpdateSchema,
         response=HouseholdDetailSchema)
    def update_household(self, request, household_id):
        """Change any of compound, address, phone, people (the list sent
        replaces the old one); audited (`edit_household`)."""
        return self.welfare.update_household(household_id, request.body, request.principal)

    @api("POST", "/households/<household_id>/consents", roles=ADMIN, body=ConsentCreateSchema,
         response=ConsentSchema, status=201, idempotent=True)
    def record_consent(self, request, household_id):
        """A person of the household (person_position or person_name) consented
        to a purpose (case_records, health_information, financial_information,
        sharing_with_agencies) or withdrew it (`given: false`), on `given_on`
        (today if not sent). Each answer is a row: the history stays. Audited
        (`record_consent`); 409 for an erased household."""
        return self.welfare.record_consent(household_id, request.body, request.principal,
                                           idempotency_key=request.idempotency_key)

    @api("GET", "/households/<household_id>/export", roles=ADMIN, response=HouseholdExportSchema)
    def export_household(self, request, household_id):
        """Everything welfare holds about the household, for the household on
        request, as a JSON file download: the household and its people, every
        consent answer, its cases with visits, referrals and their stages,
        goods received and reopenings. Audited (`export_household`)."""
        exported = self.welfare.export_household(household_id, request.principal)
        day = exported["exported_at"][:10]
        return file_response(json.dumps(exported, ensure_ascii=False, indent=2).encode("utf-8"),
                             "application/json; charset=utf-8",
                             exports.filename("linli-household", household_id, day, fmt="json"))

    @api("POST", "/cases", roles=ADMIN, body=CaseOpenSchema, response=CaseSchema, status=201, idempotent=True,
         coalesced="welfare")
    def open_case(self, request):
        """Open a hardship case, assigned to a party member, who is alerted."""
        return self.welfare.open_case(request.body, request.principal, self._assignee_account(request.payload),
                                      idempotency_key=request.idempotency_key)

    @api("GET", "/cases", roles=MEMBER_OR_ADMIN, query=CaseQuerySchema, response=CaseListSchema)
    def list_cases(self, request):
        """Cases, newest first, by status, category, assignee_id, compound,
        overdue (a follow-up visit due: the cases the follow-up alert was
        raised for), erasable (closed longer ago than the retention period and
        not erased): an admin sees all, a member only their own."""
        return self.welfare.list_cases(request.principal, request.query_params)

    @api("GET", "/cases/recipients", roles=ADMIN, query=PageSchema, response=RecipientListSchema)
    def list_recipients(self, request):
        """Cases that can receive goods (open or in progress), newest first:
        compound, categories and summary, no household or names; for the
        donation office to choose one. Each listing is audited (`recipients_list`)."""
        return self.welfare.list_recipients(request.principal, request.query_params)

    @api("GET", "/cases/<case_id>", roles=MEMBER_OR_ADMIN, response=CaseSchema)
    def get_case(self, request, case_id):
        """One case; another member's case is a 404."""
        return self.welfare.get_case(case_id, request.principal)

    @api("GET", "/cases/<case_id>/household", roles=MEMBER_OR_ADMIN, response=HouseholdSchema)
    def get_case_household(self, request, case_id):
        """The case's household (address, people, contact phone) for its party
        member to visit: the assignee while the case is theirs, and admins;
        anyone else gets a 404. Audited (`read_household`, `GET /audit?household_id=`)."""
        return self.welfare.get_case_household(case_id, request.principal)

    @api("POST", "/cases/<case_id>/confirm", roles=ADMIN, body=CaseOpenSchema, response=CaseSchema)
    def confirm_case(self, request, case_id):
        """A draft found on patrol becomes an open case, paired with a party member (alerted)."""
        return self.welfare.confirm_case(case_id, request.body, request.principal,
                                         self._assignee_account(request.payload))

    @api("POST", "/cases/<case_id>/dismiss", roles=ADMIN, body=CaseDismissSchema, response=CaseSchema)
    def dismiss_case(self, request, case_id):
        """A draft found on patrol that needs no case, with the reason."""
        return self.welfare.dismiss_case(case_id, request.body, request.principal)

    @api("POST", "/cases/<case_id>/assign", roles=ADMIN, body=CaseAssignSchema, response=CaseSchema)
    def assign_case(self, request, case_id):
        """Pair the case with another party member; both are alerted."""
        return self.welfare.assign_case(case_id, request.body, request.principal,
                                        self._assignee_account(request.payload))

    @api("POST", "/cases/<case_id>/visits", roles=MEMBER_OR_ADMIN, body=VisitCreateSchema,
         response=VisitSchema, status=201, idempotent=True)
    def log_visit(self, request, case_id):
        """A visit to the household, with its date and notes (the office or the assignee)."""
        return self.welfare.log_visit(case_id, request.body, request.principal,
                                      idempotency_key=request.idempotency_key)

    @api("POST", "/cases/<case_id>/referrals", roles=MEMBER_OR_ADMIN, body=ReferralCreateSchema,
         response=ReferralSchema, status=201, idempotent=True)
    def add_referral(self, request, case_id):
        """Refer the household to an agency for a benefit; it starts `submitted`."""
        return self.welfare.add_referral(case_id, request.body, request.principal,
                                         idempotency_key=request.idempotency_key)

    @api("PATCH", "/referrals/<referral_id>", roles=MEMBER_OR_ADMIN, body=ReferralDecisionSchema,
         response=ReferralSchema)
    def decide_referral(self, request, referral_id):
        """The agency's answer: approved or rejected, once."""
        return self.welfare.decide_referral(referral_id, request.body, request.principal)

    @api("POST", "/referrals/<referral_id>/stages", roles=MEMBER_OR_ADMIN, body=ReferralStageSchema,
         response=ReferralSchema)
    def record_referral_stage(self, request, referral_id):
        """A stage the agency reached, on a date: application_submitted,
        documents_checked, agency_home_visit, decision_made, in that order and
        none skipped (else 409 naming the next); the date not before the
        previous stage's nor after today in the community's calendar (else 400)."""
        return self.welfare.record_referral_stage(referral_id, request.body, request.principal)

    @api("POST", "/cases/<case_id>/close", roles=MEMBER_OR_ADMIN, body=CaseCloseSchema, response=CaseSchema)
    def close_case(self, request, case_id):
        """Close the case with its outcome, and how it ended (`outcome_kind`:
        helped, referred, moved_away, deceased, declined, other; optional);
        closing a closed case is a 409."""
        return self.welfare.close_case(case_id, request.body, request.principal)

    @api("POST", "/cases/<case_id>/erase", roles=ADMIN, body=CaseEraseSchema, response=CaseSchema)
    def erase_case(self, request, case_id):
        """Erase a closed or dismissed case's personal details once its closing
        is older than LINLI_WELFARE_RETENTION_DAYS (else 409 with
        `erasable_from`), and its household's with its last unerased case; the
        marker stands in their place, the counts stay. Twice is a 409. Audited
        (`erase_case`)."""
        return self.welfare.erase_case(case_id, request.body, request.principal)

    @api("POST", "/cases/<case_id>/reopen", roles=ADMIN, body=CaseReopenSchema, response=CaseSchema)
    def reopen_case(self, request, case_id):
        """A closed case back to open, with its assignee, for a reason (kept,
        with the outcome it had, in the case's reopenings); 409 unless closed."""
        return self.welfare.reopen_case(case_id, request.body, request.principal)

    @api("GET", "/audit", roles=ADMIN, query=AuditQuerySchema, response=AuditListSchema)
    def list_audit(self, request):
        """Who read whose personal details, and when: cases and households
        (filter by case_id or household_id), with `source=patrol` (or
        incident_id, patrol_id) incidents' descriptions and patrols' notes read
        in full, with `source=donations` (or campaign_id) drives' ledgers
        exported, with `source=accounts` searches of the members and their filters."""
        query = request.query
        source = query["source"] or next(
            (source for source, names in AUDIT_FILTERS.items() if any(query[name] for name in names)), "welfare")
        if source == "accounts":  # the gateway's own
            return AuditListSchema().dump(accounts.audit_page(self.db.session, query))
        others = {name for other, names in AUDIT_FILTERS.items() if other != source for name in names}
        params = {key: value for key, value in request.query_params.items() if key not in others | {"source"}}
        return getattr(self, source).list_audit(request.principal, params)

    def _assignee_account(self, payload: dict) -> dict | None:
        """The assignee's account as held here, for welfare to check its rule
        (welfare.domain.check_assignee) inside the call the gateway vouches
        for: only what the rule needs, no name, no phone; None if no account has the id."""
        found = self.db.session.execute(select(Account.party_member, Account.active).where(
            Account.id == payload["assignee_id"])).first()  # two columns: no account loaded for a case opened
        if found is None:
            return None
        return {"id": payload["assignee_id"], "party_member": found.party_member, "active": found.active}

    def _require_members(self, field: str, member_ids: list[str]):
        """Each id a registered account with the member (or admin) role: a
        dashboard screen cannot patrol."""
        if not member_ids:
            return
        accounts_found = self.db.session.scalars(select(Account).where(Account.id.in_(member_ids)))
        members = {a.id for a in accounts_found if set(a.roles) & set(MEMBER_OR_ADMIN)}
        unknown = [member_id for member_id in member_ids if member_id not in members]
        if unknown:
            raise InvalidInput("Not every id is a registered member.",
                               {"fields": {field: [f"No registered member has the id {m}." for m in unknown]}})

    # -- activity groups and volunteer service ---------------------------------------

    @api("POST", "/groups", roles=ADMIN, body=GroupCreateSchema, response=GroupSchema, status=201, idempotent=True)
    def create_group(self, request):
        """An activity group (dance, sport, art, music, other) with its leader,
        an active party member, and helpers, active members (else 400 naming the field)."""
        group = self.volunteers.create_group(request.body, request.principal,
                                             self._group_people_accounts(request.payload),
                                             idempotency_key=request.idempotency_key)
        return self._show_groups([group], request.principal)[0]

    @api("GET", "/groups", roles=MEMBER_OR_ADMIN, query=GroupQuerySchema, response=GroupListSchema)
    def list_groups(self, request):
        """Activity groups, newest first; `active` narrows the list. Admins see
        the leader's and helpers' names too."""
        page = self.volunteers.list_groups(request.query_params)
        return {**page, "items": self._show_groups(page["items"], request.principal)}

    @api("GET", "/groups/<group_id>", roles=MEMBER_OR_ADMIN, response=GroupSchema)
    def get_group(self, request, group_id):
        """One activity group."""
        return self._show_groups([self.volunteers.get_group(group_id)], request.principal)[0]

    @api("PATCH", "/groups/<group_id>", roles=ADMIN, body=GroupUpdateSchema, response=GroupSchema)
    def update_group(self, request, group_id):
        """Change any of name, leader (`null` clears it: no sessions until a
        new one), helpers (the list sent replaces the old), active."""
        updated = self.volunteers.update_group(group_id, request.body, request.principal,
                                               self._group_people_accounts(request.payload))
        return self._show_groups([updated], request.principal)[0]

    @api("POST", "/groups/<group_id>/sessions", roles=MEMBER_OR_ADMIN, body=SessionCreateSchema,
         response=SessionSchema, status=201, key_required=True)
    def record_session(self, request, group_id):
        """A session held (rehearsal, practice, performance, match), recorded by
        the group's leader or the office: how many residents took part (a
        count, never names); the leader and each helper present are credited
        its duration. 409 when the group has no leader or is inactive; 400 for
        a helper who is not the group's. An Idempotency-Key header is required."""
        return self.volunteers.record_session(group_id, request.body, request.principal,
                                              idempotency_key=request.idempotency_key)

    @api("GET", "/sessions", roles=MEMBER_OR_ADMIN, query=SessionQuerySchema, response=SessionListSchema)
    def list_sessions(self, request):
        """Sessions, newest recorded first; by `group_id` and `month` held (YYYY-MM)."""
        return self.volunteers.list_sessions(request.query_params)

    @api("POST", "/service", roles=ADMIN, body=ServiceCreateSchema, response=ServiceRecordSchema, status=201,
         key_required=True)
    def record_service(self, request):
        """Other volunteer service (weekend tutoring, the blackboard bulletin):
        who, the date, minutes and what was done. An Idempotency-Key header is required."""
        self._require_members("member_id", [request.payload["member_id"]])
        return self._with_member_names(
            [self.volunteers.record_service(request.body, request.principal,
                                            idempotency_key=request.idempotency_key)])[0]

    @api("GET", "/service", roles=ADMIN, query=ServiceListQuerySchema, response=ServiceListSchema, download=True)
    def list_service(self, request):
        """Every member's service records (patrols, sessions, other), newest
        first, with their names; by `member_id`, `month`, `source`. With
        `?format=csv` or `xlsx`: every record the filters find, as a file;
        each export is audited (`service_export`, GET /audit?source=accounts)."""
        params = {key: value for key, value in request.query_params.items() if key != "format"}
        fmt = request.query.get("format")
        if fmt is None:
            page = self.volunteers.list_service(request.principal, params)
            return {**page, "items": self._with_member_names(page["items"])}
        records, params = [], {**params, "limit": "200", "cursor": None}
        while True:
            page = self.volunteers.list_service(request.principal, params)
            records += page["items"]
            if not page["next_cursor"]:
                break
            params["cursor"] = page["next_cursor"]
        rows = exports.service_rows(self._with_member_names(records))
        session = self.db.session  # names in bulk leave: who took them, when, with which filters
        session.add(AuditEntry(actor_id=request.principal["id"], action="service_export", at=naive_utcnow(),
                               filters={key: value for key, value in request.query.items() if value is not None}))
        session.commit()
        return self._export(fmt, exports.SERVICE_HEADER, rows, "service", request.query["month"] or "all")

    @api("GET", "/service/totals", roles=ADMIN, query=TotalsQuerySchema, response=ServiceTotalsSchema)
    def service_totals(self, request):
        """Each member's minutes in a `month` (this month by default): in all and
        by source (patrol, session, other), most first, with names."""
        totals = self.volunteers.service_totals(request.query_params)
        return {**totals, "members": self._with_member_names(totals["members"])}

    @api("GET", "/me/service", roles=ANY_ROLE, query=MyServiceQuerySchema, response=MyServiceSchema)
    def my_service(self, request):
        """One's own volunteer service in a `year` (this year by default): the
        total minutes, each month's by source, and the latest 50 records."""
        return self.volunteers.my_service(request.principal, request.query_params)

    def _group_people_accounts(self, payload: dict) -> list[dict]:
        """The accounts of a group's leader and helpers sent, as held here, for
        volunteers to check its rule (volunteers.domain.check_group_people)
        inside the call the gateway vouches for: only what the rule needs, no
        name, no phone; in id order, so that a retry's arguments are the same."""
        ids = {payload.get("leader_id"), *(payload.get("helper_ids") or [])} - {None}
        if not ids:
            return []
        found = self.db.session.scalars(select(Account).where(Account.id.in_(ids)).order_by(Account.id))
        return [{"id": a.id, "party_member": a.party_member, "active": a.active, "roles": list(a.roles)}
                for a in found]

    def _names(self, member_ids) -> dict[str, str]:
        ids = {member_id for member_id in member_ids if member_id}
        if not ids:
            return {}
        return dict(self.db.session.execute(select(Account.id, Account.name).where(Account.id.in_(ids))).all())

    def _show_groups(self, groups: list[dict], principal: dict) -> list[dict]:
        """Groups as this caller may see them: names of the leader and helpers for admins only."""
        if "admin" not in principal["roles"]:
            return groups
        names = self._names([g["leader_id"] for g in groups] + [h for g in groups for h in g["helper_ids"]])
        return [{**group, "leader_name": names.get(group["leader_id"]),
                 "helper_names": [names.get(helper) for helper in group["helper_ids"]]} for group in groups]

    def _with_member_names(self, items: list[dict]) -> list[dict]:
        names = self._names(item["member_id"] for item in items)
        return [{**item, "member_name": names.get(item["member_id"])} for item in items]

    # -- the community's categories ------------------------------------------------

    @api("GET", "/categories", roles=None, response=CategoriesSchema)
    def list_categories(self, request):
        """Public, no login (the transparency page labels goods with it): every
        kind of category with its Chinese and English labels, asked of the three
        services that own them at once: incident, case, goods."""
        pool = eventlet.GreenPool()
        answers = pool.imap(lambda kind: getattr(self, OWNERS[kind]).list_categories(), KINDS)
        return dict(zip(KINDS, answers, strict=True))

    @api("POST", "/categories/<kind>", roles=ADMIN, body=CategoryCreateSchema, response=CategorySchema,
         status=201, idempotent=True)
    def add_category(self, request, kind):
        """A new category of a kind (incident, case or goods): `{code, label_zh,
        label_en}`; a code taken already, retired or not, is a 409."""
        return self._category_owner(kind).add_category(request.body, request.principal,
                                                       idempotency_key=request.idempotency_key)

    @api("POST", "/categories/<kind>/<code>/retire", roles=ADMIN, response=CategorySchema)
    def retire_category(self, request, kind, code):
        """No new records of this category; old ones keep it. Twice is a 409,
        and so is the incident category hardship (it makes draft cases in welfare)."""
        return self._category_owner(kind).retire_category(code, request.principal)

    def _category_owner(self, kind: str):
        if kind not in OWNERS:
            raise NotFound(f"No such kind of category: one of {', '.join(KINDS)}.")
        return getattr(self, OWNERS[kind])

    # -- the monthly report ------------------------------------------------------------

    @api("GET", "/reports/monthly", roles=ADMIN, query=MonthlyReportQuerySchema, download=("xlsx",))
    def monthly_report(self, request):
        """One month for the street office (`?month=YYYY-MM`, the community's
        month; not one still to come): patrols and zones, incidents by category,
        drives and where goods went, cases opened, helped and closed by outcome,
        activity sessions and volunteer hours. Counts only, no one's name: each
        service's own `monthly_summary`, asked at once. A service that does not
        answer: 503 naming it (a report with a hole is not sent).
        `?format=xlsx`: a workbook, one sheet per part, labelled in Chinese and English."""
        month = request.query["month"]
        if month > self._community_month():
            message = "That month has not begun yet: choose this month or an earlier one."
            raise InvalidInput(message, {"fields": {"month": [message]}})
        pool = eventlet.GreenPool()
        answers = dict(zip(REPORT_PARTS, pool.imap(partial(self._monthly_summary_of, month), REPORT_PARTS),
                           strict=True))
        refused = next((answer for answer in answers.values() if isinstance(answer, LinliError)), None)
        if refused is not None:  # the month itself refused by a service: the caller's to fix, not a silence
            raise refused
        silent = [part for part, answer in answers.items() if answer is None]
        if silent:
            raise Unavailable(f"The report is not complete: {', '.join(silent)} did not answer. "
                              "Try again in a minute.", {"services": silent})
        report = {"month": month, "generated_at": isoformat(naive_utcnow()), **answers}
        if request.query.get("format") != "xlsx":
            return report
        return file_response(exports.workbook(exports.monthly_report_sheets(report)), exports.CONTENT_TYPES["xlsx"],
                             exports.filename("linli-report", month, fmt="xlsx"))

    def _monthly_summary_of(self, month: str, service: str) -> dict | LinliError | None:
        """The service's own summary of the month; its refusal of the month (a 4xx); or
        None (logged) if it did not give one."""
        try:
            return getattr(self, service).monthly_summary(month)
        except LinliError as exc:
            if exc.status < 500:
                return exc
            log.warning("monthly report: %s did not answer (%s)", service, type(exc).__name__)
            return None
        except Exception as exc:
            log.warning("monthly report: %s did not answer (%s)", service, type(exc).__name__)
            return None

    def _community_month(self) -> str:
        """This month where the community lives: "2026-12"."""
        return month_of(local_today(self.config))

    # -- the wall screens' device tokens ---------------------------------------------

    @api("POST", "/devices", roles=ADMIN, body=DeviceCreateSchema, response=DeviceIssuedSchema, status=201)
    def issue_device(self, request):
        """A wall screen's token: `{name, days}` (days 1–730, default 365). The
        token is shown this once; it reads the dashboard summary and the live
        feed, nothing else. Audited (`device_issued`, GET /audit?source=accounts)."""
        issued = devices.issue(self.db.session, self.config["JWT_SECRET"], request.principal["id"],
                               request.payload["name"].strip(), request.payload["days"])
        return DeviceIssuedSchema().dump(issued)

    @api("GET", "/devices", roles=ADMIN, query=PageSchema, response=DeviceListSchema)
    def list_devices(self, request):
        """The wall screens' tokens, newest first, without the tokens: name,
        who issued it and when, expiry, revoked, last seen (to the minute), status."""
        return DeviceListSchema().dump(devices.page(self.db.session, request.query))

    @api("DELETE", "/devices/<device_id>", roles=ADMIN, response=DeviceSchema)
    def revoke_device(self, request, device_id):
        """Revoke a screen's token: refused (401) within a second, and its open
        feed closed. Again: the same answer, nothing changes. Audited (`device_revoked`)."""
        return DeviceSchema().dump(devices.revoke(self.db.session, request.principal["id"], device_id))

    # -- the dashboard -------------------------------------------------------------

    @api("GET", "/dashboard/summary", roles=WALL)
    def dashboard_summary(self, request):
        """Aggregates from every service, asked at once. A service that does not
        answer in time is marked `{"available": false}`; the rest is there.
        `timezone`: the community's (LINLI_TIMEZONE), in which the wall shows times."""
        parts = ("patrol", "donations", "welfare", "volunteers")
        pool = eventlet.GreenPool()
        answers = dict(zip(parts, pool.imap(self._summary_of, parts), strict=True))
        return {**answers, "generated_at": isoformat(naive_utcnow()),
                "timezone": self.config["LOCAL_TIMEZONE"]}

    @api("GET", "/events/stream", roles=WALL, query=FeedQuerySchema, event_stream=True)
    def stream_events(self, request):
        """Everything that happens, live, as server-sent events (`event: event`,
        data: the envelope with personal data removed); `?source=` narrows it."""
        source = request.query["source"]
        return sse_response(request, self.event_feed, FEED, "event",
                            wanted=None if source is None else (lambda envelope: envelope["source"] == source))

    def _summary_of(self, service: str) -> dict:
        answer, failure = self._ask_briefly(service, "summary")
        if failure:
            log.warning("dashboard: %s did not answer (%s)", service, failure)
            return {"available": False}
        return {"available": True, **answer}

    def _ask_briefly(self, service: str, method: str) -> tuple[object, str | None]:
        """Call a service with a probe's short deadline: (answer, None), or
        (None, why it did not answer)."""
        try:
            with eventlet.Timeout(PROBE_TIMEOUT):
                return getattr(getattr(self, service), method)(), None
        except (Exception, eventlet.Timeout) as exc:
            return None, type(exc).__name__

    @api("GET", "/", roles=None, prefix="", in_openapi=False, shed=False)
    def dashboard_page(self, request):
        """The dashboard for the office's wall: counters, bars, zones, a live feed.
        An admin who logs in here goes on to the office's workspace at /app/."""
        return html_response(PAGES["dashboard"])

    @api("GET", "/dashboard", roles=None, prefix="", in_openapi=False, shed=False)
    def wall_page(self, request):
        """The same dashboard, at an address that always stays on it (an admin opening `/` goes to /app/)."""
        return html_response(PAGES["dashboard"])

    @api("GET", "/public", roles=None, prefix="", in_openapi=False, shed=False)
    def public_page(self, request):
        """The transparency page: each drive's totals and where goods went; receipt lookup."""
        return html_response(PAGES["public"])

    @api("GET", "/app/", roles=None, prefix="", in_openapi=False, shed=False)
    def office_page(self, request):
        """The community office's workspace: members, zones and teams, drives and
        the donation table, households and cases, categories, exports. The
        community's time zone rides along, so a form's "today" is its today."""
        timezone = escape(self.config["LOCAL_TIMEZONE"], quote=True)
        return html_response(PAGES["app"].replace("{timezone}", timezone))

    @api("GET", "/app", roles=None, prefix="", in_openapi=False, shed=False)
    def office_page_slash(self, request):
        return Response(status=308, headers={"Location": "/app/"})

    @api("GET", "/static/<path:name>", roles=None, prefix="", in_openapi=False, shed=False)
    def static_file(self, request, name):
        """The pages' own files; anything else is a 404 (no path reaches the disk)."""
        if name not in STATIC:
            raise NotFound("No such file.")
        return static_response(request, *STATIC[name])

    @api("GET", "/public/summary", roles=None)
    def public_summary(self, request):
        """Public, no login: each drive's totals, items, and where goods were
        sent (destinations and counts only), and its dispatches with their
        dates. Built from the same aggregates. Test drives are left out."""
        return {"campaigns": [{key: campaign[key] for key in PUBLIC_CAMPAIGN_FIELDS}
                              for campaign in self.donations.summary()["campaigns"]
                              if not campaign.get("test")]}  # a drive to try things out is no one's gift

    # -- the API itself and operations ------------------------------------------

    @api("GET", "/openapi.json", roles=None)
    def openapi(self, request):
        """This document."""
        return build_spec(type(self))

    @api("GET", "/health", roles=None, response=HealthSchema, shed=False)
    def health(self, request):
        """Liveness: the gateway process answers."""
        return {"status": "ok"}

    @api("GET", "/ready", roles=None, response=ReadySchema, shed=False)
    def ready(self, request):
        """Readiness of this gateway process: its database answers and the
        broker takes a message, each within a second. The backends are not
        asked (see /health/services): one slow service does not take the
        whole API out of a load balancer."""
        checks = answer_within(READY_TIMEOUT, {"database": self._check_database, "broker": self._check_broker})
        ready = all(result == "ok" for result in checks.values())
        body = {"status": "ready" if ready else "not_ready", "checks": checks}
        if ready:
            return body
        return json_response({**error_payload("not_ready", "Not every part answers yet.", checks), **body}, 503)

    @api("GET", "/health/services", roles=None, response=ServicesHealthSchema, shed=False)
    def services_health(self, request):
        """Each backend service, asked at once to answer a ping within a
        second: `ok`, or why not (e.g. `unavailable (timeout)`); 503 unless
        every one answers."""
        checks = answer_within(READY_TIMEOUT, {service: partial(self._check_service, service)
                                                     for service in BACKEND_SERVICES})
        healthy = all(result == "ok" for result in checks.values())
        body = {"status": "ok" if healthy else "degraded", "services": checks}
        if healthy:
            return body
        return json_response({**error_payload("degraded", "Not every service answers.", checks), **body}, 503)

    @api("GET", "/metrics", roles=None, in_openapi=False, shed=False)
    def prometheus_metrics(self, request):
        """Prometheus metrics of the gateway process, with every dead-letter
        queue's depth as the last refresh found it (refresh_dead_letter_depths)."""
        return Response(generate_latest(), mimetype=CONTENT_TYPE_LATEST)

    @timer(interval=DEAD_LETTER_REFRESH_SECONDS, eager=True)
    def refresh_dead_letter_depths(self):
        """linli_dead_letter_depth from the broker, over the connection the
        process keeps: a scrape opens no connection of its own."""
        self.dead_letter_depths()

    def _check_database(self):
        self.db.session.execute(text("SELECT 1"))

    def _check_broker(self):
        """The broker takes a message from this process (and confirms it): a
        broker that blocks publishers (a memory or disk alarm) is not ready."""
        with broker.connection(self.config, transport_options={"confirm_publish": True}) as connection:
            # To nameko's RPC exchange with a key of a reply nobody waits for: the
            # broker drops it; the gateway's broker user may publish nothing else there.
            Producer(connection).publish(b"", exchange=get_rpc_exchange(self.config), routing_key=str(uuid.uuid4()))

    def _check_service(self, service: str):
        getattr(self, service).ping()


def answer_within(seconds: float, checks: dict) -> dict[str, str]:
    """Run the checks at once, each `ok` or why not, in `seconds` at most
    whatever they do: one still running then is `unavailable (timeout)`
    (and stopped; a stuck close of a connection ends in its own time)."""
    running = {name: eventlet.spawn(_why_not, check) for name, check in checks.items()}
    results = {}
    with eventlet.Timeout(seconds, False):
        for name, thread in running.items():
            results[name] = thread.wait()
    for name, thread in running.items():
        if name in results:
            continue
        if thread.dead:  # done while an earlier one was still waited for
            results[name] = thread.wait()
        else:
            thread.kill()
            results[name] = "unavailable (timeout)"
    return results


def _why_not(check) -> str:
    """`ok` if check() returns, else `unavailable (why)`."""
    try:
        check()
        return "ok"
    except (RpcTimeout, eventlet.Timeout, Unavailable):  # Unavailable: the RPC deadline passed (a ping is never shed)
        return "unavailable (timeout)"
    except Exception as exc:
        return f"unavailable ({type(exc).__name__})"
