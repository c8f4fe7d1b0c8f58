"""Every route × every role, through the gateway: who may call what is this
table, and a route added without a line here fails the test. A refused call
is 401 (no token) or 403 (wrong role); an allowed one is neither (with an empty
body and unknown ids it is a 400 or a 404, and writes nothing)."""
import pytest
import requests

from services.gateway.openapi import api_routes
from services.gateway.service import GatewayService
from tests.e2e.conftest import Client

PUBLIC, ANY, MEMBERS, ADMIN = "public", "admin member viewer", "admin member", "admin"

WHO_MAY = {
    ("POST", "/auth/token"): PUBLIC,
    ("GET", "/health"): PUBLIC,
    ("GET", "/ready"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/receipts/<receipt_no>"): PUBLIC,
    ("GET", "/me"): ANY,
    ("GET", "/me/alerts"): ANY,
    ("POST", "/me/alerts/<alert_id>/ack"): ANY,
    ("GET", "/me/alerts/stream"): ANY,
    ("PUT", "/me/webhook"): ANY,
    ("GET", "/me/webhook"): ANY,
    ("DELETE", "/me/webhook"): ANY,
    ("POST", "/members"): ADMIN,
    ("GET", "/members"): ADMIN,
    ("GET", "/members/<member_id>"): ADMIN,
    ("POST", "/zones"): ADMIN,
    ("GET", "/zones"): ANY,
    ("GET", "/zones/coverage"): ANY,
    ("GET", "/zones/<zone_id>"): ANY,
    ("PUT", "/zones/<zone_id>/team"): ADMIN,
    ("POST", "/patrols"): MEMBERS,
    ("GET", "/patrols"): MEMBERS,
    ("POST", "/patrols/<patrol_id>/finish"): MEMBERS,
    ("POST", "/incidents"): MEMBERS,
    ("GET", "/incidents"): MEMBERS,
    ("GET", "/incidents/<incident_id>"): MEMBERS,
    ("POST", "/incidents/<incident_id>/ack"): MEMBERS,
    ("POST", "/incidents/<incident_id>/resolve"): MEMBERS,
    ("POST", "/campaigns"): ADMIN,
    ("GET", "/campaigns"): ANY,
    ("GET", "/campaigns/<campaign_id>"): ANY,
    ("POST", "/campaigns/<campaign_id>/close"): ADMIN,
    ("POST", "/campaigns/<campaign_id>/donations"): MEMBERS,
    ("GET", "/campaigns/<campaign_id>/donations"): MEMBERS,
    ("GET", "/campaigns/<campaign_id>/donations/<receipt_no>"): MEMBERS,
    ("POST", "/campaigns/<campaign_id>/dispatches"): ADMIN,
    ("GET", "/campaigns/<campaign_id>/dispatches"): MEMBERS,
    ("POST", "/households"): ADMIN,
    ("GET", "/households/<household_id>"): ADMIN,
    ("POST", "/cases"): ADMIN,
    ("GET", "/cases"): MEMBERS,
    ("GET", "/cases/<case_id>"): MEMBERS,
    ("POST", "/cases/<case_id>/assign"): ADMIN,
    ("POST", "/cases/<case_id>/confirm"): ADMIN,
    ("POST", "/cases/<case_id>/dismiss"): ADMIN,
    ("POST", "/cases/<case_id>/visits"): MEMBERS,
    ("POST", "/cases/<case_id>/referrals"): MEMBERS,
    ("POST", "/cases/<case_id>/close"): MEMBERS,
    ("PATCH", "/referrals/<referral_id>"): MEMBERS,
    ("POST", "/referrals/<referral_id>/stages"): MEMBERS,
    ("GET", "/audit"): ADMIN,
    ("GET", "/dashboard/summary"): ANY,
    ("GET", "/events/stream"): ANY,
    ("GET", "/public/summary"): PUBLIC,
}

ROUTES = [(route.method, route.path.removeprefix("/api/v1")) for _, route in api_routes(GatewayService)]


def test_every_route_has_a_line_in_the_table():
    assert sorted(ROUTES) == sorted(WHO_MAY)


@pytest.fixture(scope="module")
def tokens(admin, register):
    return {"admin": admin.token, "member": register()[0].token,
            "viewer": register(roles=["viewer"], party_member=False)[0].token, "anonymous": None}


@pytest.mark.parametrize("method, path", sorted(WHO_MAY))
def test_who_may_call_what(stack, tokens, method, path):
    url = stack.url + "/api/v1" + path.replace("<", "").replace(">", "-unknown")
    allowed = WHO_MAY[(method, path)]
    for role, token in tokens.items():
        client = Client(stack.url, token)
        answer = requests.request(method, url, json={} if method != "GET" else None, headers=client.headers,
                                  timeout=15, stream=True)
        answer.close()  # the alert stream would stay open
        if allowed == PUBLIC or role in allowed.split():
            assert answer.status_code not in (401, 403), (role, method, path, answer.status_code)
        elif role == "anonymous":
            assert answer.status_code == 401, (role, method, path, answer.status_code)
        else:
            assert answer.status_code == 403, (role, method, path, answer.status_code)
