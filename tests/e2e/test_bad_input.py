"""Bad input and wrong roles get a clear 4xx in the one error shape, and
nothing is written."""
import requests

from tests.e2e.conftest import Client, login


def snapshot(admin):
    return (len(admin.get("/members", params={"limit": 200}).json()["items"]),
            len(admin.get("/cases", params={"limit": 200}).json()["items"]))


def assert_error(answer, status: int, code: str, fields: tuple = ()):
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["code"] == code and error["message"]
    for field in fields:
        assert field in error["details"]["fields"], (field, error)


def test_bad_input_is_refused_field_by_field_and_changes_nothing(stack, admin, register):
    member, member_profile = register()
    viewer, _ = register(roles=["viewer"], party_member=False)
    not_party, not_party_profile = register(party_member=False)
    household = admin.post("/households", {"compound": "Xingfu Garden", "address": "Room 1", "people": [
        {"name": "王", "relation": "self", "birth_year": 1950}]}).json()
    before = snapshot(admin)

    assert_error(admin.post("/members", {}), 400, "invalid_input", ("username", "password", "name"))
    assert_error(admin.post("/members", {"username": "ok_name", "password": 12345678, "name": ["x"],
                                         "party_member": "perhaps", "roles": ["king"]}),
                 400, "invalid_input", ("password", "name", "party_member", "roles"))
    assert_error(admin.post("/cases", {"household_id": household["id"], "categories": ["elderly"],
                                       "summary": "x", "assignee_id": "no-such-member"}),
                 400, "invalid_input", ("assignee_id",))
    assert_error(admin.post("/cases", {"household_id": household["id"], "categories": ["elderly"],
                                       "summary": "x", "assignee_id": not_party_profile["id"]}),
                 400, "invalid_input", ("assignee_id",))
    assert_error(admin.post("/cases", {"household_id": "nope", "categories": ["elderly"],
                                       "summary": "x", "assignee_id": member_profile["id"]}),
                 400, "invalid_input", ("household_id",))
    assert_error(admin.post("/cases", {"household_id": household["id"], "categories": ["rich"],
                                       "summary": "x", "assignee_id": member_profile["id"]}),
                 400, "invalid_input", ("categories",))
    assert_error(admin.post("/households", {"compound": "X", "address": "Y", "people": [
        {"name": "A", "relation": "self", "birth_year": "1950"}]}), 400, "invalid_input", ("people",))

    headers = {**admin.headers, "Content-Type": "application/json"}
    assert_error(requests.post(admin.api + "/cases", data="{not json", headers=headers, timeout=10),
                 400, "invalid_input")
    assert_error(requests.post(admin.api + "/cases", data="[1, 2]", headers=headers, timeout=10),
                 400, "invalid_input")
    assert_error(requests.post(admin.api + "/members", data="x" * 300_000, headers=headers, timeout=10),
                 413, "payload_too_large")

    assert_error(requests.post(stack.url + "/api/v1/auth/token",
                               json={"username": "admin", "password": "wrong"}, timeout=10),
                 401, "not_authenticated")
    assert_error(Client(stack.url).get("/cases"), 401, "not_authenticated")
    assert_error(Client(stack.url, "not.a.token").get("/cases"), 401, "not_authenticated")
    assert_error(member.post("/members", {"username": "sneaky", "password": "password1", "name": "S"}),
                 403, "forbidden")
    assert_error(member.post("/households", {"compound": "X", "address": "Y", "people": [
        {"name": "A", "relation": "self", "birth_year": 1950}]}), 403, "forbidden")
    assert_error(viewer.get("/cases"), 403, "forbidden")
    assert_error(admin.post("/members", {"username": "admin", "password": "a-good-password-1", "name": "A"}),
                 409, "conflict", ("username",))

    assert_error(admin.get("/no/such/route"), 404, "not_found")
    assert_error(requests.delete(admin.api + "/cases", headers=admin.headers, timeout=10),
                 405, "method_not_allowed")
    assert_error(admin.get("/cases", params={"cursor": "garbage!"}), 400, "invalid_input", ("cursor",))
    for limit in ("0", "201", str(10**12), "-1", "ten"):  # a page is 1 to 200 items
        assert_error(admin.get("/cases", params={"limit": limit}), 400, "invalid_input", ("limit",))

    assert snapshot(admin) == before
    assert member.get("/me/alerts").json()["items"] == []
    assert login(stack.url, "admin", "e2e-admin-password").token  # the admin account is unharmed


def test_a_nul_character_anywhere_is_bad_input_and_changes_nothing(admin, register):
    """PostgreSQL cannot store a NUL character in text: it is refused wherever it is sent."""
    _member, member_profile = register()
    household = admin.post("/households", {"compound": "Xingfu Garden", "address": "Room 2", "people": [
        {"name": "王", "relation": "self", "birth_year": 1950}]}).json()
    case_id = admin.post("/cases", {"household_id": household["id"], "categories": ["elderly"], "summary": "x",
                                    "assignee_id": member_profile["id"]}).json()["id"]
    before = snapshot(admin)

    assert_error(admin.post(f"/cases/{case_id}/assign", {"assignee_id": "\u0000"}),
                 400, "invalid_input", ("assignee_id",))
    assert_error(admin.post("/households", {"compound": "X\u0000", "address": "Y", "people": [
        {"name": "A\u0000", "relation": "self", "birth_year": 1950}]}), 400, "invalid_input", ("compound", "people"))
    assert_error(admin.post("/cases/%00/assign", {"assignee_id": member_profile["id"]}), 400, "invalid_input")
    assert_error(admin.get("/cases", params={"cursor": "\u0000"}), 400, "invalid_input", ("cursor",))

    assert snapshot(admin) == before
    assert admin.get(f"/cases/{case_id}").json()["assignee_id"] == member_profile["id"]
