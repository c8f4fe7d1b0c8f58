"""`linli backup` under load and `linli restore` into a fresh stack, as an
operator runs them: donations and cases go on while the backup is taken, with
notifications stopped so that case_opened events wait in the broker (which a
backup does not hold); the restored stack, on a new vhost and a new var
folder, has totals equal to its donations, gap-free receipts, one alert per
case (those in flight included), every event published and none applied twice.
On PostgreSQL too (`LINLI_TEST_POSTGRES`)."""
import os
import re
import threading
import time
import uuid

import pytest
import requests

from services.ops.stack import SERVICES, Stack
from services.ops.vhost import Vhost
from tests import databases
from tests.conftest import nothing_more_arrives, wait_for
from tests.e2e.conftest import (
    ADMIN_PASSWORD, HOUSEHOLD, Client, free_port, linli, login, new_key, ok, open_case, query,
    running_stack,
)
from tests.e2e.test_donations import new_campaign

pytestmark = pytest.mark.slow  # two stacks started: about 40 s


@pytest.fixture
def second_vhost(request):
    vhost = Vhost(request.config.getoption("RABBIT_AMQP_URI").replace("pyamqp://", "amqp://")).create()
    yield vhost
    vhost.delete()


class Load:
    """Clients writing all the while: cash donations, and cases assigned to one
    member; what was acknowledged, with when."""

    def __init__(self, admin: Client, campaign_id: str, member_id: str):
        self.admin, self.campaign_id, self.member_id = admin, campaign_id, member_id
        self.donations: list[tuple[float, str]] = []  # (acknowledged at, receipt_no)
        self.cases: list[tuple[float, str]] = []       # (acknowledged at, case id)
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._donate), threading.Thread(target=self._open_cases)]
        for thread in self.threads:
            thread.start()

    def _donate(self):
        while not self.stopping.is_set():
            with _tolerating_errors():
                answer = self.admin.post(f"/campaigns/{self.campaign_id}/donations",
                                         {"kind": "cash", "amount_fen": 100}, key=new_key())
                if answer.status_code == 201:
                    self.donations.append((time.time(), answer.json()["receipt_no"]))

    def _open_cases(self):
        while not self.stopping.is_set():
            with _tolerating_errors():
                household = self.admin.post("/households", HOUSEHOLD, key=new_key())
                if household.status_code != 201:
                    continue
                case = self.admin.post("/cases", {"household_id": household.json()["id"], "categories": ["elderly"],
                                                  "summary": "Needs help with the stairs.",
                                                  "assignee_id": self.member_id}, key=new_key())
                if case.status_code == 201:
                    self.cases.append((time.time(), case.json()["id"]))

    def stop(self):
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=30)


class _tolerating_errors:
    """A request cut off by the stack's own moves counts as not acknowledged."""

    def __enter__(self):
        return self

    def __exit__(self, kind, _value, _traceback):
        return kind is not None and issubclass(kind, requests.RequestException)


def test_a_backup_under_load_restored_into_a_fresh_stack_loses_and_doubles_nothing(vhost, second_vhost, tmp_path):
    folder = tmp_path / "backup"
    with running_stack(vhost, tmp_path / "var") as stack:
        admin = login(stack.url, "admin", ADMIN_PASSWORD)
        member = admin.post("/members", {"username": f"m{uuid.uuid4().hex[:8]}", "password": "member-password",
                                         "name": "王芳", "phone": "139 1234 5678", "roles": ["member"],
                                         "party_member": True, "compound": "Xingfu Garden"})
        assert member.status_code == 201, member.text
        member_id = member.json()["id"]
        campaign_id = new_campaign(admin, goal_fen=300)["id"]

        load = Load(admin, campaign_id, member_id)
        time.sleep(2)
        stack.stop_process("notifications")  # case_opened events now wait in the broker
        time.sleep(1.5)
        backup_started = time.time()
        made = linli(stack.env, "--var", str(stack.var_dir), "backup", str(folder))
        assert made.returncode == 0, made.stderr
        print(made.stdout)
        paused_ms = int(re.search(r"writes paused for (\d+) ms", made.stdout).group(1))
        assert paused_ms < 1000, made.stdout

        # Not into a stack that runs: refused before anything is written.
        refused = linli(stack.env, "--var", str(tmp_path / "elsewhere"), "restore", str(folder))
        assert refused.returncode == 1 and "Linli is running on this broker vhost" in refused.stderr
        assert not (tmp_path / "elsewhere").exists()

        stack.start_process("notifications")
        time.sleep(1)
        load.stop()
        stack.stop_process("notifications")
        open_case(admin, member_id)  # its case_opened waits in the broker while the stack stops
    # Events left in a vhost are from after the backup: a restore there is refused.
    left = linli(dict(os.environ, AMQP_URI=vhost.amqp_uri), "--var", str(tmp_path / "elsewhere"),
                 "restore", str(folder))
    assert left.returncode == 1 and re.search(r"the broker vhost still holds \d+ event", left.stderr), left.stderr
    assert not (tmp_path / "elsewhere").exists()
    assert [ack for ack in load.donations if ack[0] > backup_started], "the load stopped before the backup"

    # A fresh var folder, fresh databases, a fresh vhost; the secrets come from the backup.
    env = (dict(os.environ, AMQP_URI=second_vhost.amqp_uri, LINLI_AMQP_MANAGEMENT_URL=second_vhost.management_url,
                LINLI_OUTBOX_GRACE_SECONDS="1")
           | databases.service_database_env(tmp_path / "restored", SERVICES))
    restored = linli(env, "--var", str(tmp_path / "restored"), "restore", str(folder))
    assert restored.returncode == 0, restored.stderr
    print(restored.stdout)
    assert "restoring donations" in restored.stdout
    published_again = int(re.search(r"(\d+) event\(s\) that a consumer had not handled", restored.stdout).group(1))
    assert published_again >= 1, restored.stdout  # the case_opened events waiting for notifications

    again = Stack(tmp_path / "restored", env=env, port=free_port())
    try:
        again.prepare()
        again.start()
        assert again.wait_ready(timeout=90), "the restored stack did not become ready"
        # The token secret came back: a token from before the backup still works.
        assert Client(again.url, admin.token).get("/me").status_code == 200

        wait_for(lambda: all(query(again, service, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") == [(0,)]
                             for service in SERVICES), timeout=30, interval=0.5, what="every outbox row published")
        cases = {row[0] for row in query(again, "welfare", "SELECT id FROM cases WHERE assignee_id = ?", member_id)}

        def alerts_per_case():
            return dict(query(again, "notifications", "SELECT ref_id, count(*) FROM alerts WHERE member_id = ? "
                                                      "AND ref_type = 'case' GROUP BY ref_id", member_id))
        wait_for(lambda: set(alerts_per_case()) >= cases, timeout=30, interval=0.5, what="an alert for every case")
        assert nothing_more_arrives(alerts_per_case, seconds=2, interval=0.5,
                                    what="the alerts per case") == {case_id: 1 for case_id in cases}

        # What was acknowledged before the backup began is there.
        assert {case_id for at, case_id in load.cases if at < backup_started} <= cases
        receipts = [row[0] for row in query(again, "donations", "SELECT receipt_no FROM donations")]
        assert {receipt for at, receipt in load.donations if at < backup_started} <= set(receipts)

        # Totals are the sum of the donations there are; receipts gap-free and unique.
        donations = query(again, "donations", "SELECT seq, amount_fen FROM donations WHERE campaign_id = ? "
                                              "ORDER BY seq", campaign_id)
        assert [seq for seq, _ in donations] == list(range(1, len(donations) + 1))
        assert len(set(receipts)) == len(receipts)
        totals = ok(Client(again.url, admin.token).get(f"/campaigns/{campaign_id}"))["totals"]
        assert (totals["cash_fen"], totals["donations"]) == (sum(fen for _, fen in donations), len(donations))
        goal_alerts = query(again, "notifications", "SELECT count(*) FROM alerts WHERE ref_id = ?", campaign_id)
        assert goal_alerts == [(1,)]
    finally:
        again.stop()
