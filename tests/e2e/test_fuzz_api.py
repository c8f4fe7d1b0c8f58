"""Schemathesis against the running stack: every operation of
/api/v1/openapi.json, fuzzed with valid and invalid input, as each kind of
caller (an admin, a volunteer, a party member with a case, a zone's team
leader, a dashboard viewer, and no token). No answer may be a 5xx, and each
must be documented: its status code, its content type and its body's schema.

Path parameters are partly the ids of real things made here first (a case, a
zone, a campaign, ...), so that requests reach past the 404 into the
services. Deterministic: Hypothesis derandomized, no example database, no
shrinking; a failure names the operation, the role and the request."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import (
    content_type_conformance, missing_required_header, negative_data_rejection, response_headers_conformance,
    response_schema_conformance, status_code_conformance,
)

from services.gateway.openapi import api_routes
from services.gateway.service import GatewayService
from tests.conftest import wait_for
from tests.e2e.conftest import Client, new_key, open_case

# Minutes of broker restarts, alarms, TLS nodes, killed instances or fuzzing: `make test-slow`.
pytestmark = pytest.mark.slow

# The admin last: its examples close the case, the campaign, the incident.
ROLES = ("anonymous", "viewer", "volunteer", "zone_leader", "party_member", "admin")
# Examples per operation: more where the caller may act (deeper into the
# services), a few where it may not (the 401/403 answers must conform too).
ALLOWED_EXAMPLES = {"admin": 25, "volunteer": 10, "party_member": 10, "zone_leader": 10, "viewer": 8, "anonymous": 8}
REFUSED_EXAMPLES = 3
# Operations that must answer a 2xx at least once (public ones for anyone; the
# admin's valid requests with real ids reach far into the services).
MIN_SUCCEEDED = {"anonymous": 3, "viewer": 10, "volunteer": 15, "zone_leader": 15, "party_member": 15, "admin": 30}
STREAM_EXAMPLES = 2          # each holds its stream open for STREAM_SECONDS
STREAM_SECONDS = 0.3
ROLE_OF_ACCOUNT = {"admin": "admin", "volunteer": "member", "party_member": "member", "zone_leader": "member",
                   "viewer": "viewer"}
# No 5xx; status code, content type, headers and body as documented; schema-invalid
# input refused with a 4xx. Not `positive_data_acceptance`: a request the schema
# allows may still be a 400 by design, field by field (a cursor not from this API,
# an assignee who is not a party member), which JSON Schema cannot say.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance, negative_data_rejection, missing_required_header]
STREAMS = {"stream_my_alerts", "stream_events"}
ROUTE_ROLES = {name: route.roles for name, route in api_routes(GatewayService)}


def put(client: Client, path: str, body: dict):
    return requests.put(client.api + path, json=body, headers=client.headers, timeout=15)


@pytest.fixture(scope="module")
def world(stack, admin, register):
    """One of each kind of caller, and real things for the path parameters."""
    volunteer, volunteer_account = register(party_member=False)
    party_member, party_account = register()
    leader, leader_account = register(party_member=False)
    viewer, _ = register(roles=["viewer"], party_member=False)

    compound = f"Fuzz Garden {uuid.uuid4().hex[:6]}"
    zone = admin.post("/zones", {"name": "Fuzz zone", "compounds": [compound]})
    assert zone.status_code == 201, zone.text
    zone_id = zone.json()["id"]
    team = put(admin, f"/zones/{zone_id}/team", {"leader_id": leader_account["id"],
                                                  "member_ids": [volunteer_account["id"]]})
    assert team.status_code == 200, team.text
    patrol = volunteer.post("/patrols", {"zone_id": zone_id})
    assert patrol.status_code == 201, patrol.text
    incident = volunteer.post("/incidents", {"zone_id": zone_id, "compound": compound, "category": "dispute",
                                             "description": "A quarrel on the stairs.", "severity": "low"})
    assert incident.status_code == 201, incident.text

    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    campaign = admin.post("/campaigns", {"name": "Fuzz drive", "goal_fen": 10_000_000,
                                         "starts_on": (today - timedelta(days=1)).isoformat(),
                                         "ends_on": (today + timedelta(days=30)).isoformat()})
    assert campaign.status_code == 201, campaign.text
    campaign_id = campaign.json()["id"]
    donation = admin.post(f"/campaigns/{campaign_id}/donations", {
        "kind": "in_kind", "items": [{"category": "clothing", "quantity": 50, "description": "coats"}]}, key=new_key())
    assert donation.status_code == 201, donation.text

    case = open_case(admin, party_account["id"])
    visit = party_member.post(f"/cases/{case['id']}/visits", {"visited_on": today.isoformat(), "notes": "Visited."})
    assert visit.status_code == 201, visit.text
    referral = party_member.post(f"/cases/{case['id']}/referrals", {"agency": "Civil affairs bureau",
                                                                    "benefit": "minimum-living allowance"})
    assert referral.status_code == 201, referral.text
    alerts = wait_for(lambda: party_member.get("/me/alerts").json()["items"], what="the case_assigned alert")
    group = admin.post("/groups", {"name": f"Fuzz group {uuid.uuid4().hex[:6]}", "kind": "dance",
                                   "leader_id": party_account["id"], "helper_ids": [volunteer_account["id"]]})
    assert group.status_code == 201, group.text

    tokens = {"admin": admin.token, "volunteer": volunteer.token, "party_member": party_member.token,
              "zone_leader": leader.token, "viewer": viewer.token, "anonymous": None}
    ids = {"member_id": party_account["id"], "zone_id": zone_id, "patrol_id": patrol.json()["id"],
           "incident_id": incident.json()["id"], "campaign_id": campaign_id,
           "receipt_no": donation.json()["receipt_no"], "household_id": case["household_id"],
           "case_id": case["id"], "referral_id": referral.json()["id"], "alert_id": alerts[0]["id"],
           "group_id": group.json()["id"]}
    # Values for the id-like fields of bodies and queries.
    fields = {"zone_id": zone_id, "compound": compound, "household_id": case["household_id"],
              "assignee_id": party_account["id"], "case_id": case["id"], "leader_id": leader_account["id"],
              "member_ids": [volunteer_account["id"]], "member_id": volunteer_account["id"],
              "helper_ids": [volunteer_account["id"]], "group_id": group.json()["id"]}
    goods = [{"category": "clothing", "quantity": 1}]
    seeds = {
        "record_donation": [{"kind": "cash", "amount_fen": 12_345, "donor_name": "王芳"},
                            {"kind": "in_kind", "items": goods, "anonymous": True}],
        "dispatch_goods": [{"destination": "Shelter", "items": goods}, {"case_id": case["id"], "items": goods}],
        "report_incident": [{"zone_id": zone_id, "compound": compound, "category": "hazard",
                             "description": "A loose railing.", "severity": "medium"}],
        "open_case": [{"household_id": case["household_id"], "categories": ["elderly"], "summary": "Needs help.",
                       "assignee_id": party_account["id"]}],
        "assign_team": [{"leader_id": leader_account["id"], "member_ids": [volunteer_account["id"]]}],
        "start_patrol": [{"zone_id": zone_id}],
        "create_group": [{"name": f"Fuzz choir {uuid.uuid4().hex[:6]}", "kind": "music",
                          "leader_id": party_account["id"], "helper_ids": [volunteer_account["id"]]}],
        "record_session": [{"held_on": today.isoformat(), "starts_at": "19:00", "duration_minutes": 60,
                            "place": "Square", "what": "Rehearsal", "kind": "rehearsal", "participants": 20,
                            "helper_ids": [volunteer_account["id"]]}],
        "record_service": [{"member_id": volunteer_account["id"], "served_on": today.isoformat(), "minutes": 60,
                            "what": "Tutoring"}],
    }
    return {"tokens": tokens, "ids": ids, "fields": fields, "seeds": seeds}


@pytest.fixture(scope="module")
def api_schema(stack):
    return schemathesis.openapi.from_url(stack.url + "/api/v1/openapi.json")


def cases_for(operation, world: dict):
    """Valid and invalid requests. Path parameters are real ids or generated;
    valid bodies and queries sometimes carry real ids too (a zone, a case, a
    party member), and a few operations get a known-good body to build on."""
    ids, fields = world["ids"], world["fields"]
    real = {parameter.name: ids[parameter.name] for parameter in operation.path_parameters if parameter.name in ids}
    operation_id = operation.definition.raw["operationId"]
    strategies = [operation.as_strategy(GenerationMode.NEGATIVE),
                  with_real_fields(operation.as_strategy(GenerationMode.POSITIVE), fields)]
    if real:
        strategies += [operation.as_strategy(GenerationMode.NEGATIVE, path_parameters=real),
                       with_real_fields(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=real), fields)]
    strategies += [operation.as_strategy(GenerationMode.POSITIVE, path_parameters=real, body=body)
                   for body in world["seeds"].get(operation_id, ())]
    return st.one_of(strategies)


def with_real_fields(strategy, fields: dict):
    """Schema-valid cases, half of them with the id-like fields of their body
    and query set to real values (still schema-valid: only strings replaced)."""
    def patch(drawn):
        case, replace = drawn
        if replace:
            if isinstance(case.body, dict) and set(case.body) & set(fields):
                case.body = {**case.body, **{name: fields[name] for name in case.body if name in fields}}
            if case.query and set(case.query) & set(fields):
                case.query = {**case.query, **{name: fields[name] for name in case.query if name in fields}}
        return case
    return st.tuples(strategy, st.booleans()).map(patch)


def as_caller(case, token: str | None):
    """The caller's token in place of the generated one; none for no caller.
    A case about a missing or malformed Authorization header keeps it as generated."""
    if case.meta is not None and case.meta.is_negative_at(ParameterLocation.HEADER):
        return
    headers = {name: value for name, value in (case.headers or {}).items() if name.lower() != "authorization"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    case.headers = headers


def fuzz(operation, base_url: str, world: dict, role: str, token: str | None, succeeded: set):
    """Call one operation with its generated cases as `role`; raise the failures found."""
    operation_id = operation.definition.raw["operationId"]
    timeout = STREAM_SECONDS if operation_id in STREAMS else 30

    @settings(max_examples=examples_for(role, operation_id), deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck), print_blob=False)
    @given(case=cases_for(operation, world))
    def call(case):
        as_caller(case, token)
        response = case.call_and_validate(base_url=base_url, timeout=timeout, checks=CHECKS)
        if response.status_code < 300:
            succeeded.add(operation_id)

    call()


def examples_for(role: str, operation_id: str) -> int:
    if operation_id in STREAMS:
        return STREAM_EXAMPLES
    roles = ROUTE_ROLES[operation_id]
    if roles is None or ROLE_OF_ACCOUNT.get(role) in roles:
        return ALLOWED_EXAMPLES[role]
    return REFUSED_EXAMPLES


@pytest.mark.parametrize("role", ROLES)
def test_every_answer_is_documented_and_none_is_a_server_error(stack, api_schema, world, role):
    token = world["tokens"][role]
    operations = [result.ok() for result in api_schema.get_all_operations()]
    # Schemathesis leaves out the operation that serves the document it was loaded from.
    assert sorted(operation.definition.raw["operationId"] for operation in operations) == sorted(
        set(ROUTE_ROLES) - {"openapi"})
    failures, succeeded = [], set()
    for operation in operations:
        try:
            fuzz(operation, stack.url, world, role, token, succeeded)
        except (Exception, BaseExceptionGroup) as exc:  # every operation's failure, reported together
            failures.append(f"--- {role}: {operation.label}\n{exc}")
    assert not failures, f"{len(failures)} operations failed:\n" + "\n".join(failures)
    # Not vacuous: the token works, and requests get past validation into the services.
    assert ("get_me" in succeeded) is (token is not None)
    assert len(succeeded) >= MIN_SUCCEEDED[role], sorted(succeeded)
