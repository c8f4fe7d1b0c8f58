"""The community's own categories through the gateway, on the whole stack:
the office adds illegal structures (違章建築) as an incident category, a
patrol reports one, the office retires it, and a new report is refused while
the old incident keeps its category."""
import uuid
from datetime import date, timedelta

import pytest

from tests.e2e.conftest import new_key

# make test-slow (about 20 s, a stack of its own: it needs the categories as a new installation has them); in
# make test the office's page adds a category and the monthly report's story reports an illegal structure.
pytestmark = pytest.mark.slow

ILLEGAL = {"code": "illegal_structure", "label_zh": "違章建築", "label_en": "Illegal structure"}


def error_of(answer, status: int) -> dict:
    assert answer.status_code == status, answer.text
    return answer.json()["error"]


def test_every_role_lists_each_kind_with_its_labels(admin, register):
    viewer, _ = register(roles=["viewer"], party_member=False)
    answer = viewer.get("/categories")
    assert answer.status_code == 200, answer.text
    listed = answer.json()
    assert set(listed) == {"incident", "case", "goods"}
    assert {"code": "hardship", "label_zh": "困难群众", "label_en": "Hardship", "retired": False} in listed["incident"]
    assert listed["case"][0] == {"code": "low_income", "label_zh": "低收入", "label_en": "Low income",
                                 "retired": False}
    assert [c["code"] for c in listed["goods"]] == [
        "clothing", "bedding", "food", "water", "medicine", "tents", "other"]


def test_illegal_structures_from_added_to_retired(admin):
    added = admin.post("/categories/incident", ILLEGAL, key=new_key())
    assert added.status_code == 201, added.text
    assert added.json() == {**ILLEGAL, "retired": False}
    assert {**ILLEGAL, "retired": False} in admin.get("/categories").json()["incident"]

    zone = admin.post("/zones", {"name": f"Zone {uuid.uuid4().hex[:8]}", "compounds": [f"Heping Li {uuid.uuid4()}"]})
    assert zone.status_code == 201, zone.text
    report = {"zone_id": zone.json()["id"], "compound": zone.json()["compounds"][0], "category": "illegal_structure",
              "description": "A rooftop extension going up without a permit.", "severity": "medium"}
    incident = admin.post("/incidents", report)
    assert incident.status_code == 201, incident.text
    assert incident.json()["category"] == "illegal_structure"

    retired = admin.post("/categories/incident/illegal_structure/retire")
    assert retired.status_code == 200, retired.text
    assert retired.json() == {**ILLEGAL, "retired": True}
    error = error_of(admin.post("/categories/incident/illegal_structure/retire"), 409)
    assert "retired already" in error["message"]

    error = error_of(admin.post("/incidents", report), 400)
    assert error["code"] == "invalid_input"
    assert "illegal_structure is retired" in error["details"]["fields"]["category"][0]
    again = admin.get(f"/incidents/{incident.json()['id']}")
    assert again.status_code == 200 and again.json()["category"] == "illegal_structure"

    error = error_of(admin.post("/categories/incident", ILLEGAL, key=new_key()), 409)  # retired codes stay taken
    assert "exists" in error["message"]


def test_an_unknown_category_is_a_400_that_says_where_to_look(admin):
    zone = admin.post("/zones", {"name": f"Zone {uuid.uuid4().hex[:8]}", "compounds": [f"Kangle {uuid.uuid4()}"]})
    error = error_of(admin.post("/incidents", {
        "zone_id": zone.json()["id"], "compound": zone.json()["compounds"][0], "category": "graffiti",
        "description": "Paint on the gate.", "severity": "low"}), 400)
    assert error["details"]["fields"]["category"] == [
        "No incident category has the code graffiti; GET /categories lists them."]


def test_retiring_hardship_is_a_409_it_makes_draft_cases_in_welfare(admin):
    error = error_of(admin.post("/categories/incident/hardship/retire"), 409)
    assert "draft hardship cases" in error["message"]
    assert not next(c for c in admin.get("/categories").json()["incident"] if c["code"] == "hardship")["retired"]


def test_only_the_office_adds_or_retires_and_bad_input_is_named(admin, register):
    viewer, _ = register(roles=["viewer"], party_member=False)
    member, _ = register()
    for client in (viewer, member):
        assert error_of(client.post("/categories/goods", {**ILLEGAL, "code": "heaters"}), 403)["code"] == "forbidden"
        assert error_of(client.post("/categories/goods/tents/retire"), 403)["code"] == "forbidden"
    assert error_of(admin.post("/categories/parking", ILLEGAL), 404)["code"] == "not_found"
    assert error_of(admin.post("/categories/parking/other/retire"), 404)["code"] == "not_found"
    assert error_of(admin.post("/categories/goods/nothing_such/retire"), 404)["code"] == "not_found"
    error = error_of(admin.post("/categories/goods", {"code": "Heaters!", "label_zh": " ", "label_en": "Heaters"}), 400)
    assert set(error["details"]["fields"]) == {"code", "label_zh"}
    assert "heaters" not in [c["code"] for c in admin.get("/categories").json()["goods"]]


def test_a_new_goods_category_is_counted_in_a_drive(admin):
    assert admin.post("/categories/goods", {"code": "heaters", "label_zh": "取暖器", "label_en": "Heaters"},
                      key=new_key()).status_code == 201
    campaign = admin.post("/campaigns", {"name": "Winter", "goal_fen": 10_000,
                                         "starts_on": (date.today() - timedelta(days=1)).isoformat(),
                                         "ends_on": (date.today() + timedelta(days=2)).isoformat()}).json()
    gift = admin.post(f"/campaigns/{campaign['id']}/donations", {
        "kind": "in_kind", "items": [{"category": "heaters", "quantity": 3}], "anonymous": True}, key=new_key())
    assert gift.status_code == 201, gift.text
    totals = admin.get(f"/campaigns/{campaign['id']}").json()
    assert totals["totals"]["items"] == {"heaters": 3} and totals["stock"] == {"heaters": 3}
