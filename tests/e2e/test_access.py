"""Every route × every role, through the gateway: who may call what is this
table, and a route added without a line here fails the test. A call without a
valid token (none, expired, signed with another key, tampered with, unsigned)
is a 401 on every route that is not public; a wrong role is a 403; an allowed
caller gets the route's own answer to an empty body and unknown ids (a 400,
404 or 200, which writes nothing)."""
import base64
import json
import time

import jwt
import pytest
import requests

from services.gateway.openapi import api_routes
from services.gateway.service import GatewayService
from tests.e2e.conftest import Client

PUBLIC, ANY, MEMBERS, ADMIN = "public", "admin member viewer", "admin member", "admin"
WALL = "admin member viewer device"  # a wall screen's device token reads these two and nothing else

WHO_MAY = {  # route: (who may call it, what they get with an empty body and unknown ids)
    ("POST", "/auth/token"): (PUBLIC, 400),
    ("GET", "/health"): (PUBLIC, 200),
    ("GET", "/ready"): (PUBLIC, 200),
    ("GET", "/health/services"): (PUBLIC, 200),
    ("GET", "/openapi.json"): (PUBLIC, 200),
    ("GET", "/receipts/<receipt_no>"): (PUBLIC, 400),
    ("GET", "/me"): (ANY, 200),
    ("GET", "/me/alerts"): (ANY, 200),
    ("POST", "/me/alerts/<alert_id>/ack"): (ANY, 404),
    ("GET", "/me/alerts/stream"): (ANY, 200),
    ("PUT", "/me/webhook"): (ANY, 400),
    ("GET", "/me/webhook"): (ANY, 404),
    ("DELETE", "/me/webhook"): (ANY, 404),
    ("POST", "/members"): (ADMIN, 400),
    ("GET", "/members"): (ADMIN, 200),
    ("GET", "/members/<member_id>"): (ADMIN, 404),
    ("PATCH", "/members/<member_id>"): (ADMIN, 404),
    ("POST", "/members/<member_id>/password"): (ADMIN, 400),
    ("POST", "/me/password"): (ANY, 400),
    ("POST", "/zones"): (ADMIN, 400),
    ("GET", "/zones"): (ANY, 200),
    ("GET", "/zones/coverage"): (ANY, 200),
    ("GET", "/zones/<zone_id>"): (ANY, 404),
    ("PUT", "/zones/<zone_id>/team"): (ADMIN, 400),
    ("POST", "/patrols"): (MEMBERS, 400),
    ("GET", "/patrols"): (MEMBERS, 200),
    ("POST", "/patrols/<patrol_id>/finish"): (MEMBERS, 404),
    ("POST", "/patrols/<patrol_id>/correct"): (ADMIN, 400),
    ("POST", "/incidents"): (MEMBERS, 400),
    ("GET", "/incidents"): (MEMBERS, 200),
    ("GET", "/incidents/<incident_id>"): (MEMBERS, 404),
    ("POST", "/incidents/<incident_id>/ack"): (MEMBERS, 404),
    ("POST", "/incidents/<incident_id>/resolve"): (MEMBERS, 400),
    ("POST", "/campaigns"): (ADMIN, 400),
    ("GET", "/campaigns"): (ANY, 200),
    ("GET", "/campaigns/<campaign_id>"): (ANY, 404),
    ("PATCH", "/campaigns/<campaign_id>"): (ADMIN, 400),  # an empty body changes nothing
    ("GET", "/campaigns/<campaign_id>/summary"): (ADMIN, 404),
    ("POST", "/campaigns/<campaign_id>/close"): (ADMIN, 404),
    ("POST", "/campaigns/<campaign_id>/donations"): (MEMBERS, 400),
    ("GET", "/campaigns/<campaign_id>/donations"): (MEMBERS, 404),
    ("GET", "/campaigns/<campaign_id>/donations/<receipt_no>"): (MEMBERS, 404),
    ("POST", "/campaigns/<campaign_id>/donations/<receipt_no>/void"): (ADMIN, 400),  # no reason
    ("POST", "/campaigns/<campaign_id>/dispatches"): (ADMIN, 400),
    ("GET", "/campaigns/<campaign_id>/dispatches"): (MEMBERS, 404),
    ("POST", "/households"): (ADMIN, 400),
    ("GET", "/households"): (ADMIN, 200),
    ("GET", "/households/<household_id>"): (ADMIN, 404),
    ("PATCH", "/households/<household_id>"): (ADMIN, 404),
    ("POST", "/households/<household_id>/consents"): (ADMIN, 400),
    ("GET", "/households/<household_id>/export"): (ADMIN, 404),
    ("POST", "/cases"): (ADMIN, 400),
    ("GET", "/cases"): (MEMBERS, 200),
    ("GET", "/cases/<case_id>"): (MEMBERS, 404),
    ("GET", "/cases/<case_id>/household"): (MEMBERS, 404),
    ("GET", "/cases/recipients"): (ADMIN, 200),
    ("POST", "/cases/<case_id>/reopen"): (ADMIN, 400),
    ("POST", "/cases/<case_id>/erase"): (ADMIN, 400),
    ("POST", "/cases/<case_id>/assign"): (ADMIN, 400),
    ("POST", "/cases/<case_id>/confirm"): (ADMIN, 400),
    ("POST", "/cases/<case_id>/dismiss"): (ADMIN, 400),
    ("POST", "/cases/<case_id>/visits"): (MEMBERS, 400),
    ("POST", "/cases/<case_id>/referrals"): (MEMBERS, 400),
    ("POST", "/cases/<case_id>/close"): (MEMBERS, 400),
    ("PATCH", "/referrals/<referral_id>"): (MEMBERS, 400),
    ("POST", "/referrals/<referral_id>/stages"): (MEMBERS, 400),
    ("GET", "/audit"): (ADMIN, 200),
    ("POST", "/groups"): (ADMIN, 400),
    ("GET", "/groups"): (MEMBERS, 200),
    ("GET", "/groups/<group_id>"): (MEMBERS, 404),
    ("PATCH", "/groups/<group_id>"): (ADMIN, 404),
    ("POST", "/groups/<group_id>/sessions"): (MEMBERS, 400),
    ("GET", "/sessions"): (MEMBERS, 200),
    ("POST", "/service"): (ADMIN, 400),
    ("GET", "/service"): (ADMIN, 200),
    ("GET", "/service/totals"): (ADMIN, 200),
    ("GET", "/me/service"): (ANY, 200),
    ("GET", "/reports/monthly"): (ADMIN, 400),  # with no month: 400 naming it
    ("GET", "/categories"): (PUBLIC, 200),
    ("POST", "/categories/<kind>"): (ADMIN, 400),
    ("POST", "/categories/<kind>/<code>/retire"): (ADMIN, 404),
    ("GET", "/dashboard/summary"): (WALL, 200),
    ("GET", "/events/stream"): (WALL, 200),
    ("POST", "/devices"): (ADMIN, 400),
    ("GET", "/devices"): (ADMIN, 200),
    ("DELETE", "/devices/<device_id>"): (ADMIN, 404),
    ("GET", "/public/summary"): (PUBLIC, 200),
}

ROUTES = [(route.method, route.path.removeprefix("/api/v1")) for _, route in api_routes(GatewayService)]


def test_every_route_has_a_line_in_the_table():
    assert sorted(ROUTES) == sorted(WHO_MAY)


def forged(claims: dict, secret: str) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


def tampered(token: str, **claims) -> str:
    """The token with its claims changed and its signature kept."""
    header, payload, signature = token.split(".")
    changed = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))) | claims
    encoded = base64.urlsafe_b64encode(json.dumps(changed).encode()).rstrip(b"=").decode()
    return f"{header}.{encoded}.{signature}"


@pytest.fixture(scope="module")
def stack(office_stack):
    """The office's shared stack (tests/e2e/conftest.py): unknown ids and empty bodies change nothing there."""
    return office_stack


@pytest.fixture(scope="module")
def tokens(stack, admin, register):
    """A token of each role, and tokens that must not work: expired, signed
    with another key, tampered with (a member's token claiming admin), unsigned."""
    admin_id = admin.get("/me").json()["id"]
    member = register()[0].token
    now, secret = int(time.time()), stack.env["LINLI_JWT_SECRET"]
    # Forged right, a token works: so each bad one below fails for its one flaw.
    good = forged({"sub": admin_id, "roles": ["admin"], "iat": now, "exp": now + 600}, secret)
    assert Client(stack.url, good).get("/members").status_code == 200
    return {
        "admin": admin.token, "member": member,
        "viewer": register(roles=["viewer"], party_member=False)[0].token, "no token": None,
        "device": admin.post("/devices", {"name": "Wall screen"}).json()["token"],
        "expired": forged({"sub": admin_id, "roles": ["admin"], "iat": now - 7200, "exp": now - 60}, secret),
        "another key": forged({"sub": admin_id, "roles": ["admin"], "iat": now, "exp": now + 600},
                              "another-secret-that-is-also-32-characters-long"),
        "tampered": tampered(member, roles=["admin"]),
        "unsigned": jwt.encode({"sub": admin_id, "roles": ["admin"], "exp": now + 600}, None, algorithm="none"),
    }


ROLES = ("admin", "member", "viewer", "device")
NOT_A_LOGIN = ("no token", "expired", "another key", "tampered", "unsigned")


@pytest.mark.parametrize("caller", ROLES + NOT_A_LOGIN)
@pytest.mark.parametrize("method, path", sorted(WHO_MAY))
def test_who_may_call_what(stack, tokens, method, path, caller):
    url = stack.url + "/api/v1" + path.replace("<", "").replace(">", "-unknown")
    who, allowed_status = WHO_MAY[(method, path)]
    streaming = path.endswith("/stream")  # an open stream is not read, only its status
    answer = requests.request(method, url, json={} if method != "GET" else None,
                              headers=Client(stack.url, tokens[caller]).headers, timeout=15, stream=streaming)
    if streaming and answer.status_code == 200:
        answer.close()
    if who == PUBLIC or caller in who.split():
        assert answer.status_code == allowed_status
    elif caller in NOT_A_LOGIN:
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == "not_authenticated"
    else:
        assert answer.status_code == 403
        assert answer.json()["error"]["code"] == "forbidden"
