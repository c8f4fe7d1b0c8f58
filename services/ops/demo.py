"""`linli up --demo`: the community of DESIGN.md, loaded through the public API
so the demo exercises the same path as every user. Loads once per database."""
from __future__ import annotations

import requests

DEMO_ADMIN = ("admin", "linli-admin-demo")
DEMO_LOGINS = [
    # username, password, what they are
    ("admin", "linli-admin-demo", "community office (admin)"),
    ("wangfang", "linli-member-demo", "party member, paired with the Li household (member)"),
    ("zhao.east", "linli-member-demo", "leader of the East zone's patrol team (member)"),
    ("screen", "linli-viewer-demo", "the dashboard on the office wall (viewer)"),
]

# 14 residential compounds in 4 patrol zones, each with a leader (an older party
# member or a resident representative) and volunteers.
ZONES = [
    ("East 东片", ["Xingfu Garden", "Heping Li", "Chunhui Yuan", "Lijing Yuan"],
     ("zhao.east", "赵建国"), [("qian.east", "钱秀兰"), ("sun.east", "孙志强")]),
    ("West 西片", ["Jingui Yuan", "Cuizhu Yuan", "Donghu Xiaoqu", "Yangguang Huayuan"],
     ("li.west", "李淑珍"), [("zhou.west", "周明"), ("wu.west", "吴桂英")]),
    ("South 南片", ["Changqing Li", "Kangle Yuan", "Wenhua Xincun"],
     ("zheng.south", "郑德华"), [("chen.south", "陈玉梅"), ("lin.south", "林海")]),
    ("North 北片", ["Lüyin Xiaoqu", "Youyi Li", "Xinhua Li"],
     ("he.north", "何光明"), [("guo.north", "郭丽"), ("ma.north", "马超")]),
]

MEMBERS = [
    {"username": "wangfang", "password": "linli-member-demo", "name": "王芳", "phone": "138 0000 0001",
     "roles": ["member"], "party_member": True, "compound": "Xingfu Garden"},
    {"username": "screen", "password": "linli-viewer-demo", "name": "Office screen",
     "roles": ["viewer"], "party_member": False, "compound": None},
]

HOUSEHOLD = {
    "compound": "Xingfu Garden",
    "address": "Building 3, Unit 2, Room 401",
    "people": [
        {"name": "李秀英", "relation": "mother", "birth_year": 1946, "conditions": ["frail"]},
        {"name": "李强", "relation": "son", "birth_year": 1975, "conditions": ["severe mental illness"]},
    ],
}


def load(base_url: str) -> bool:
    """Load the demo world; False when it was there already."""
    api = base_url + "/api/v1"
    token = requests.post(api + "/auth/token", json=dict(zip(("username", "password"), DEMO_ADMIN, strict=True)),
                          timeout=10).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    ids = {}
    for member in MEMBERS:
        answer = requests.post(api + "/members", json=member, headers=headers, timeout=10)
        if answer.status_code == 409:
            return False
        answer.raise_for_status()
        ids[member["username"]] = answer.json()["id"]
    for zone_name, compounds, leader, volunteers in ZONES:
        team_ids = []
        for username, name in [leader, *volunteers]:
            answer = requests.post(api + "/members", headers=headers, timeout=10, json={
                "username": username, "password": "linli-member-demo", "name": name, "roles": ["member"],
                "party_member": (username, name) == leader, "compound": compounds[0]})
            answer.raise_for_status()
            team_ids.append(answer.json()["id"])
        zone = requests.post(api + "/zones", json={"name": zone_name, "compounds": compounds},
                             headers=headers, timeout=10)
        zone.raise_for_status()
        requests.put(f"{api}/zones/{zone.json()['id']}/team", headers=headers, timeout=10,
                     json={"leader_id": team_ids[0], "member_ids": team_ids[1:]}).raise_for_status()
    household = requests.post(api + "/households", json=HOUSEHOLD, headers=headers, timeout=10)
    household.raise_for_status()
    requests.post(api + "/cases", headers=headers, timeout=10, json={
        "household_id": household.json()["id"],
        "categories": ["low_income", "disability", "elderly", "illness"],
        "summary": "An 80-year-old mother and her son with a severe mental illness: apply for the "
                   "minimum-living allowance (civil affairs bureau) and a severe-disability "
                   "certificate (disability federation).",
        "assignee_id": ids["wangfang"],
    }).raise_for_status()
    return True
