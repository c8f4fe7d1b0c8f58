"""`linli up --demo`: the community of DESIGN.md, loaded through the public API
so the demo exercises the same path as every user. Loads once per database."""
from __future__ import annotations

import requests

from services.common import config as linli_config
from services.common.clock import local_today

DEMO_ADMIN = ("admin", "linli-admin-demo")
DEMO_LOGINS = [
    # username, password, what they are
    ("admin", "linli-admin-demo", "community office (admin)"),
    ("wangfang", "linli-member-demo", "party member, paired with the Li household (member)"),
    ("zhao.east", "linli-member-demo", "leader of the East zone's patrol team (member)"),
    ("screen", "linli-viewer-demo", "the dashboard on the office wall (viewer)"),
    ("liu.yangge", "linli-member-demo", "party member, leader of the Yangge dance group (member)"),
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


# The earthquake relief drive: over 16,000 yuan and 270 items of clothing and
# bedding, from residents, in two days.
DRIVE = {"name": "Earthquake relief 抗震救灾捐款捐物", "goal_fen": 1_500_000}
DONORS = ["张伟", "王秀英", "李娜", "刘洋", "陈静", "杨勇", "黄敏", "赵磊", "周杰", "吴霞"]
CASH_FEN = [50_000, 20_000, 10_000, 30_000, 5_000, 100_000, 20_000, 8_800, 50_000, 10_000] * 4 \
    + [200_000, 100_000, 88_800]          # 43 gifts, 1,604,000 fen (16,040 yuan) in all
GOODS = [("clothing", 5, "winter coats"), ("clothing", 4, "sweaters"), ("bedding", 3, "quilts"),
         ("bedding", 2, "blankets"), ("clothing", 6, "children's clothes")] * 6 \
    + [("clothing", 30, "a shop's donation"), ("clothing", 30, "a school's drive"), ("clothing", 30, "a factory's"),
       ("bedding", 30, "a hotel's donation"), ("bedding", 30, "a neighbourhood committee's")]
# 270 items: 180 of clothing, 90 of bedding


# The patrol work the community remembers most from its year: illegal
# structures, a category of its own (added through the API, as an office would).
ILLEGAL_STRUCTURE = {"code": "illegal_structure", "label_zh": "違章建築", "label_en": "Illegal structure"}
INCIDENTS = [  # zone (index in ZONES), compound, what was seen, severity
    (0, "Heping Li", "A rooftop extension going up on Building 7 without a permit; scaffolding over the path.",
     "medium"),
    (2, "Kangle Yuan", "A brick shed built out over the fire lane behind Building 2.", "high"),
]


def load_incidents(api: str, headers: dict, zone_ids: list[str]):
    requests.post(api + "/categories/incident", json=ILLEGAL_STRUCTURE, timeout=10,
                  headers={**headers, "Idempotency-Key": "demo-category-illegal-structure"}).raise_for_status()
    for number, (zone, compound, description, severity) in enumerate(INCIDENTS):
        requests.post(api + "/incidents", timeout=10, headers={**headers, "Idempotency-Key": f"demo-incident-{number}"},
                      json={"zone_id": zone_ids[zone], "compound": compound, "category": ILLEGAL_STRUCTURE["code"],
                            "description": description, "severity": severity}).raise_for_status()


def community_today():
    """Today where the community lives, as the services count it (the gateway's config: LINLI_TIMEZONE)."""
    return local_today(linli_config.load("gateway"))


def load_drive(api: str, headers: dict, case_id: str):
    from datetime import timedelta

    today = community_today()
    campaign = requests.post(api + "/campaigns", headers=headers, timeout=10, json={
        **DRIVE, "starts_on": (today - timedelta(days=1)).isoformat(),
        "ends_on": (today + timedelta(days=6)).isoformat()})
    campaign.raise_for_status()
    donations = f"{api}/campaigns/{campaign.json()['id']}/donations"
    gifts = [{"kind": "cash", "amount_fen": amount} for amount in CASH_FEN] + [
        {"kind": "in_kind", "items": [{"category": c, "quantity": q, "description": d}]} for c, q, d in GOODS]
    for number, gift in enumerate(gifts):
        donor = {"anonymous": True} if number % 4 == 3 else {"donor_name": DONORS[number % len(DONORS)]}
        requests.post(donations, json={**gift, **donor}, timeout=10,
                      headers={**headers, "Idempotency-Key": f"demo-{number}"}).raise_for_status()
    dispatches = f"{api}/campaigns/{campaign.json()['id']}/dispatches"
    requests.post(dispatches, headers={**headers, "Idempotency-Key": "demo-dispatch-1"}, timeout=10, json={
        "destination": "Qingshui village relief station", "items": [
            {"category": "clothing", "quantity": 120}, {"category": "bedding", "quantity": 60}]}).raise_for_status()
    requests.post(dispatches, headers={**headers, "Idempotency-Key": "demo-dispatch-2"}, timeout=10, json={
        "case_id": case_id, "items": [{"category": "bedding", "quantity": 2},
                                      {"category": "clothing", "quantity": 2}]}).raise_for_status()


# Five activity groups, each led by a party member, with helpers; a retired
# teacher who tutors at weekends and a 75-year-old party member who writes the
# blackboard bulletin, whose hours the office records as other service.
GROUPS = [  # name, kind, leader (username, name), helpers
    ("秧歌队 Yangge dance", "dance", ("liu.yangge", "刘桂芝"), [("zhang.yangge", "张凤英"), ("song.yangge", "宋玉兰")]),
    ("门球队 Gateball", "sport", ("sun.gateball", "孙德胜"), [("cao.gateball", "曹永福")]),
    ("书画组 Calligraphy and painting", "art", ("lin.shuhua", "林静"), [("xie.shuhua", "谢文彬")]),
    ("合唱团 Choir", "music", ("xu.choir", "许丽华"), [("han.choir", "韩春燕")]),
    ("太极拳队 Tai chi", "sport", ("gao.taiji", "高振国"), [("luo.taiji", "罗淑芬")]),
]
# This year's sessions: six new programmes rehearsed, three gateball matches,
# performances. Residents who took part, counted (never named): 300 in all.
SESSIONS = [  # group (index in GROUPS), days ago, starts, minutes, kind, participants, place, what
    (0, 300, "19:00", 90, "rehearsal", 40, "3号楼前广场 Square by Building 3", "排练新节目《红红火火》 New programme"),
    (0, 240, "19:00", 90, "rehearsal", 38, "3号楼前广场 Square by Building 3", "排练扇子舞《春之韵》 New fan dance"),
    (3, 200, "15:00", 120, "rehearsal", 30, "社区活动室 Community hall", "排练合唱《我和我的祖国》 New song"),
    (3, 150, "15:00", 120, "rehearsal", 28, "社区活动室 Community hall", "排练合唱《茉莉花》 New song"),
    (4, 120, "07:00", 60, "rehearsal", 25, "东门花园 East gate garden", "新套路二十四式 New 24-form routine"),
    (2, 90, "09:00", 150, "rehearsal", 18, "社区书画室 Painting room", "书画展新作 New works for the exhibition"),
    (1, 180, "08:30", 120, "match", 12, "东门球场 East gate court", "对阵幸福里 Match against Xingfu Li"),
    (1, 100, "08:30", 120, "match", 14, "东门球场 East gate court", "街道联赛 District league match"),
    (1, 40, "08:30", 120, "match", 12, "东门球场 East gate court", "重阳友谊赛 Double Ninth friendly"),
    (0, 60, "18:30", 60, "performance", 48, "社区广场 Community square", "国庆演出 National Day show"),
    (3, 20, "19:00", 90, "performance", 35, "社区广场 Community square", "社区晚会 Community evening"),
]
VOLUNTEER_MEMBERS = [  # username, name, party member
    ("xu.teacher", "徐文华", True),     # a retired teacher: weekend tutoring
    ("feng.bulletin", "冯志刚", True),  # 75, a party member: the blackboard bulletin
]
OTHER_SERVICE = (  # member (username), every so many days, how many times, minutes, what
    [("xu.teacher", 7, 12, 120, "周末辅导功课 Weekend tutoring")]
    + [("feng.bulletin", 30, 10, 90, "出黑板报 The blackboard bulletin")])


def load_volunteers(api: str, headers: dict):
    """The activity groups, their leaders and helpers, this year's sessions and other service."""
    from datetime import timedelta

    today = community_today()
    first = today.replace(month=1, day=1)

    def on(days_ago: int) -> str:  # this year's, never before its first day
        return max(first, today - timedelta(days=days_ago)).isoformat()

    def member(username: str, name: str, party_member: bool) -> str:
        answer = requests.post(api + "/members", headers=headers, timeout=10, json={
            "username": username, "password": "linli-member-demo", "name": name, "roles": ["member"],
            "party_member": party_member, "compound": "Xingfu Garden"})
        answer.raise_for_status()
        return answer.json()["id"]

    group_ids = []
    for number, (name, kind, leader, helpers) in enumerate(GROUPS):
        leader_id = member(*leader, True)
        helper_ids = [member(*helper, False) for helper in helpers]
        group = requests.post(api + "/groups", timeout=10, json={
            "name": name, "kind": kind, "leader_id": leader_id, "helper_ids": helper_ids},
            headers={**headers, "Idempotency-Key": f"demo-group-{number}"})
        group.raise_for_status()
        group_ids.append((group.json()["id"], helper_ids))
    for number, (group, days_ago, starts, minutes, kind, participants, place, what) in enumerate(SESSIONS):
        group_id, helper_ids = group_ids[group]
        requests.post(f"{api}/groups/{group_id}/sessions", timeout=10, json={
            "held_on": on(days_ago), "starts_at": starts, "duration_minutes": minutes, "kind": kind,
            "participants": participants, "place": place, "what": what, "helper_ids": helper_ids},
            headers={**headers, "Idempotency-Key": f"demo-session-{number}"}).raise_for_status()
    ids = {username: member(username, name, party) for username, name, party in VOLUNTEER_MEMBERS}
    for username, every, times, minutes, what in OTHER_SERVICE:
        for time in range(times):
            requests.post(api + "/service", timeout=10, json={
                "member_id": ids[username], "served_on": on(3 + every * time), "minutes": minutes, "what": what},
                headers={**headers, "Idempotency-Key": f"demo-service-{username}-{time}"}).raise_for_status()


def load(base_url: str) -> bool:
    """Load the demo world; False when it was there already."""
    api = base_url + "/api/v1"
    token = requests.post(api + "/auth/token", json=dict(zip(("username", "password"), DEMO_ADMIN, strict=True)),
                          timeout=10).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    ids, zone_ids = {}, []
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
        zone_ids.append(zone.json()["id"])
        requests.put(f"{api}/zones/{zone.json()['id']}/team", headers=headers, timeout=10,
                     json={"leader_id": team_ids[0], "member_ids": team_ids[1:]}).raise_for_status()
    load_incidents(api, headers, zone_ids)
    household = requests.post(api + "/households", json=HOUSEHOLD, headers=headers, timeout=10)
    household.raise_for_status()
    case = requests.post(api + "/cases", headers=headers, timeout=10, json={
        "household_id": household.json()["id"],
        "categories": ["low_income", "disability", "elderly", "illness"],
        "summary": "An 80-year-old mother and her son with a severe mental illness: apply for the "
                   "minimum-living allowance (civil affairs bureau) and a severe-disability "
                   "certificate (disability federation).",
        "assignee_id": ids["wangfang"],
    })
    case.raise_for_status()
    load_case_history(api, headers, case.json()["id"])
    load_drive(api, headers, case.json()["id"])
    load_volunteers(api, headers)
    return True


def load_case_history(api: str, headers: dict, case_id: str):
    """The Li household's case so far: a visit, and the two referrals that
    secured it (the allowance, the disability certificate)."""
    from datetime import date, timedelta

    def on(days_ago: int) -> str:
        return (date.today() - timedelta(days=days_ago)).isoformat()

    requests.post(f"{api}/cases/{case_id}/visits", headers=headers, timeout=10, json={
        "visited_on": on(12), "notes": "Mother cannot leave her bed; son calm, on medication."}).raise_for_status()
    for agency, benefit, stages in [
            ("Civil affairs bureau 民政局", "Minimum-living allowance 低保",
             ["application_submitted", "documents_checked", "agency_home_visit", "decision_made"]),
            ("Disability federation 残联", "Severe-disability certificate 残疾证",
             ["application_submitted", "documents_checked", "agency_home_visit", "decision_made"])]:
        referral = requests.post(f"{api}/cases/{case_id}/referrals", headers=headers, timeout=10,
                                 json={"agency": agency, "benefit": benefit})
        referral.raise_for_status()
        referral_url = f"{api}/referrals/{referral.json()['id']}"
        for number, stage in enumerate(stages):
            requests.post(referral_url + "/stages", headers=headers, timeout=10,
                          json={"stage": stage, "on": on(10 - 2 * number)}).raise_for_status()
        requests.patch(referral_url, headers=headers, timeout=10, json={"status": "approved"}).raise_for_status()
