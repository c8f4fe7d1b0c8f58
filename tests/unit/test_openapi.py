"""The OpenAPI document: every route the gateway serves is in it, with its
schemas and the security it really needs."""
import re

import pytest

from services.gateway.openapi import api_routes, build_spec
from services.gateway.service import GatewayService

PUBLIC = {
    ("post", "/api/v1/auth/token"),
    ("get", "/api/v1/health"),
    ("get", "/api/v1/ready"),
    ("get", "/api/v1/health/services"),
    ("get", "/api/v1/openapi.json"),
    ("get", "/api/v1/receipts/{receipt_no}"),  # a donor looks up a receipt by number and code
    ("get", "/api/v1/categories"),  # labels, nothing personal: the transparency page shows goods by them
    ("get", "/api/v1/public/summary"),  # the transparency page's figures
}


@pytest.fixture(scope="module")
def spec():
    return build_spec(GatewayService)


@pytest.fixture(scope="module")
def routes():
    return api_routes(GatewayService)


def openapi_path(werkzeug_path: str) -> str:
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", werkzeug_path)


def operations(spec):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield method, path, operation


def resolve(spec, schema: dict) -> dict:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return spec["components"]["schemas"][name]
    return schema


def test_it_is_openapi_3(spec):
    assert spec["openapi"].startswith("3.")
    assert spec["info"]["title"] == "Linli"
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_the_gateway_has_the_core_routes(routes):
    found = {(route.method, route.path) for _name, route in routes}
    for core in [("POST", "/api/v1/auth/token"), ("POST", "/api/v1/members"),
                 ("GET", "/api/v1/members/<member_id>"), ("GET", "/api/v1/me/alerts"),
                 ("POST", "/api/v1/cases"), ("GET", "/api/v1/cases/<case_id>")]:
        assert core in found


def test_every_route_is_in_the_document_under_its_path(spec, routes):
    assert routes
    for _name, route in routes:
        path = openapi_path(route.path)
        assert "<" not in path and ">" not in path
        assert path in spec["paths"], f"{route.path} missing"
        assert route.method.lower() in spec["paths"][path], f"{route.method} {path} missing"


def test_the_document_has_nothing_the_gateway_does_not_serve(spec, routes):
    served = {(route.method.lower(), openapi_path(route.path)) for _name, route in routes}
    documented = {(method, path) for method, path, _op in operations(spec)}
    assert documented == served


def test_path_parameters_use_braces_and_are_declared(spec):
    operation = spec["paths"]["/api/v1/cases/{case_id}"]["get"]
    assert {"in": "path", "name": "case_id", "required": True,
            "schema": {"type": "string"}} in operation["parameters"]
    ack = spec["paths"]["/api/v1/me/alerts/{alert_id}/ack"]["post"]
    assert [p["name"] for p in ack["parameters"] if p["in"] == "path"] == ["alert_id"]


def test_every_operation_has_a_unique_id(spec):
    ids = [operation["operationId"] for _m, _p, operation in operations(spec)]
    assert len(ids) == len(set(ids))


def test_registering_a_member_documents_the_member_fields(spec):
    operation = spec["paths"]["/api/v1/members"]["post"]
    body = operation["requestBody"]
    assert body["required"] is True
    schema = resolve(spec, body["content"]["application/json"]["schema"])
    properties = schema["properties"]
    for field in ("username", "password", "name", "phone", "roles", "party_member", "compound"):
        assert field in properties, f"{field} not documented"
    assert {"username", "password", "name"} <= set(schema["required"])
    assert properties["password"].get("writeOnly") is True
    assert set(properties["roles"]["items"]["enum"]) == {"admin", "member", "viewer"}
    assert "201" in operation["responses"]


def test_the_member_answer_never_documents_a_password_to_read(spec):
    answer = spec["paths"]["/api/v1/members"]["post"]["responses"]["201"]
    schema = resolve(spec, answer["content"]["application/json"]["schema"])
    password = schema["properties"].get("password")
    assert password is None or password.get("writeOnly") is True


def test_list_routes_document_limit_and_cursor(spec):
    parameters = spec["paths"]["/api/v1/cases"]["get"]["parameters"]
    query = {p["name"]: p for p in parameters if p["in"] == "query"}
    assert set(query) >= {"limit", "cursor"}
    assert query["limit"]["schema"]["maximum"] == 200


def test_protected_routes_need_a_bearer_token(spec):
    protected = [(m, p, op) for m, p, op in operations(spec) if (m, p) not in PUBLIC]
    assert len(protected) >= 10
    for method, path, operation in protected:
        assert operation.get("security") == [{"bearer": []}], f"{method} {path} is unprotected"


def test_public_routes_carry_no_security(spec):
    documented = {(m, p): op for m, p, op in operations(spec)}
    for key in PUBLIC:
        assert key in documented
        assert not documented[key].get("security"), f"{key} asks for a token"


def test_security_matches_what_the_route_enforces(spec, routes):
    for _name, route in routes:
        operation = spec["paths"][openapi_path(route.path)][route.method.lower()]
        assert bool(operation.get("security")) is (route.roles is not None)


def test_errors_are_documented_in_the_one_shape(spec):
    error = spec["components"]["schemas"]["Error"]
    assert "error" in error["properties"]
    responses = spec["paths"]["/api/v1/cases"]["post"]["responses"]
    for status in ("400", "401", "403", "404", "409", "503"):
        assert responses[status]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Error"}


def test_each_operation_documents_only_the_errors_it_can_answer(spec, routes):
    for name, route in routes:
        responses = spec["paths"][openapi_path(route.path)][route.method.lower()]["responses"]
        assert {"400", "404", "503"} <= set(responses), name
        assert ("403" in responses) is (route.roles is not None), name
        assert ("413" in responses) is (route.body_schema is not None), name
        assert ("422" in responses) is route.idempotent, name
        if route.method == "GET":
            assert "409" not in responses, name
    receipt = spec["paths"]["/api/v1/receipts/{receipt_no}"]["get"]["responses"]
    assert "401" not in receipt and "403" not in receipt  # public: no token is asked for


def test_a_locked_login_is_a_documented_429_with_retry_after(spec):
    responses = spec["paths"]["/api/v1/auth/token"]["post"]["responses"]
    assert "401" in responses  # a wrong password, on a public route
    assert responses["429"]["headers"]["Retry-After"]["schema"]["type"] == "integer"
    assert "429" not in spec["paths"]["/api/v1/cases"]["post"]["responses"]


def test_idempotent_writes_document_the_idempotency_key_header(spec, routes):
    for name, route in routes:
        parameters = spec["paths"][openapi_path(route.path)][route.method.lower()]["parameters"]
        headers = [p for p in parameters if p["in"] == "header"]
        if route.idempotent:
            assert headers == [{"in": "header", "name": "Idempotency-Key", "required": route.key_required,
                                "description": headers[0]["description"],
                                "schema": {"type": "string", "minLength": 1, "maxLength": 100}}], name
        else:
            assert headers == [], name
    assert any(route.idempotent for _name, route in routes)


def test_money_and_goods_writes_and_hours_served_require_the_idempotency_key(spec, routes):
    """A keyless retry of a donation was recorded twice: the key is required, and documented so. So
    it is for a session and for service the office records: a retry must not count hours twice."""
    required = sorted(name for name, route in routes if route.key_required)
    assert required == ["dispatch_goods", "record_donation", "record_service", "record_session"]
    for path in ("/api/v1/campaigns/{campaign_id}/donations", "/api/v1/campaigns/{campaign_id}/dispatches",
                 "/api/v1/groups/{group_id}/sessions", "/api/v1/service"):
        (header,) = [p for p in spec["paths"][path]["post"]["parameters"] if p["in"] == "header"]
        assert header["required"] is True and "idempotency_key_required" in header["description"]


def test_a_body_not_sent_as_json_is_a_documented_415(spec, routes):
    for name, route in routes:
        responses = spec["paths"][openapi_path(route.path)][route.method.lower()]["responses"]
        assert ("415" in responses) is (route.body_schema is not None), name


def test_a_stream_past_the_accounts_bound_is_a_documented_429_with_retry_after(spec):
    for path in ("/api/v1/me/alerts/stream", "/api/v1/events/stream"):
        assert spec["paths"][path]["get"]["responses"]["429"]["headers"]["Retry-After"]


CSV_OR_XLSX = ["csv", "xlsx"]
# path: (who may, the files ?format= asks for)
DOWNLOADS = {"/api/v1/campaigns/{campaign_id}/donations": ("Roles: admin, member.", CSV_OR_XLSX),
             "/api/v1/campaigns/{campaign_id}/summary": ("Roles: admin.", CSV_OR_XLSX),
             "/api/v1/service": ("Roles: admin.", CSV_OR_XLSX),
             "/api/v1/reports/monthly": ("Roles: admin.", ["xlsx"])}
FILE_TYPES = {"csv": "text/csv", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def test_every_answer_has_its_content_type(spec):
    for method, path, operation in operations(spec):
        for status, response in operation["responses"].items():
            if path in DOWNLOADS and status == "200":  # JSON, or a file as ?format= asks
                files = {FILE_TYPES[fmt] for fmt in DOWNLOADS[path][1]}
                assert set(response["content"]) == {"application/json", *files}, (method, path, status)
                continue
            assert len(response["content"]) == 1, (method, path, status)
    assert set(spec["paths"]["/api/v1/events/stream"]["get"]["responses"]["200"]["content"]) == {"text/event-stream"}
    assert set(spec["paths"]["/api/v1/me/alerts/stream"]["get"]["responses"]["200"]["content"]) == {
        "text/event-stream"}
    assert set(spec["paths"]["/api/v1/public/summary"]["get"]["responses"]["200"]["content"]) == {"application/json"}


def test_the_error_shape_has_code_message_and_details(spec):
    schemas = spec["components"]["schemas"]
    assert schemas["Error"]["required"] == ["error"]
    assert sorted(schemas["ErrorBody"]["required"]) == ["code", "details", "message"]
    not_ready = spec["paths"]["/api/v1/ready"]["get"]["responses"]["503"]["content"]["application/json"]["schema"]
    assert resolve(spec, not_ready)["required"] == ["error"]
    assert {"status", "checks"} <= set(resolve(spec, not_ready)["properties"])
    degraded = spec["paths"]["/api/v1/health/services"]["get"]["responses"]["503"]["content"]["application/json"]
    assert resolve(spec, degraded["schema"])["required"] == ["error"]
    assert {"status", "services"} <= set(resolve(spec, degraded["schema"])["properties"])


def test_a_webhook_url_is_a_uri(spec):
    body = spec["paths"]["/api/v1/me/webhook"]["put"]["requestBody"]["content"]["application/json"]["schema"]
    assert resolve(spec, body)["properties"]["url"]["format"] == "uri"


def test_a_zone_without_a_team_leader_is_documented(spec):
    """A new zone has no leader: its answer says `"leader_id": null`, which the
    document must allow (it used the input schema, where the leader is required)."""
    from services.patrol.schemas import ZoneSchema

    zone = {"id": "z1", "name": "East", "compounds": ["Xingfu Garden"], "team": {"leader_id": None, "member_ids": []},
            "created_at": None, "last_patrol_at": None}
    assert ZoneSchema().dump(zone)["team"] == {"leader_id": None, "member_ids": []}
    answer = spec["paths"]["/api/v1/zones"]["post"]["responses"]["201"]["content"]["application/json"]["schema"]
    team = resolve(spec, resolve(spec, answer)["properties"]["team"])
    team = resolve(spec, team["allOf"][0]) if "allOf" in team else team  # dump_only wraps it: readOnly
    assert team["properties"]["leader_id"].get("nullable") is True
    assert "leader_id" not in team.get("required", [])


def test_streams_document_the_token_in_the_query(spec):
    for path in ("/api/v1/events/stream", "/api/v1/me/alerts/stream"):
        query = [p["name"] for p in spec["paths"][path]["get"]["parameters"] if p["in"] == "query"]
        assert "access_token" in query
    cases = spec["paths"]["/api/v1/cases"]["get"]["parameters"]
    assert "access_token" not in [p["name"] for p in cases]


def test_exports_document_the_format_and_their_files(spec, routes):
    downloads = {openapi_path(route.path) for _name, route in routes if route.download}
    assert downloads == set(DOWNLOADS)
    for path, (roles, formats) in DOWNLOADS.items():
        operation = spec["paths"][path]["get"]
        (fmt,) = [p for p in operation["parameters"] if p["in"] == "query" and p["name"] == "format"]
        assert fmt.get("required", False) is False  # without it: JSON
        assert fmt["schema"]["enum"] == formats
        for file_type in formats:
            assert operation["responses"]["200"]["content"][FILE_TYPES[file_type]]["schema"] == {
                "type": "string", "format": "binary"}
        assert operation["description"] == roles
