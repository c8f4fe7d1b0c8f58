"""deploy/k8s/51-alerts.yaml (the alert rules' one home) checked by promtool, as
Prometheus would load them, and each alert fired by promtool's own unit tests
(tests/unit/alerts/linli.test.yml), none when all is healthy; every alert says
how bad it is and where its runbook is; the Grafana dashboard and the rules name
only metrics that exist. promtool: `make promtool` (deploy/ensure-promtool.sh)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

import services.common.metrics  # noqa: F401  (registers Linli's metrics)

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "k8s" / "51-alerts.yaml"
PROMTOOL_TESTS = ROOT / "tests" / "unit" / "alerts" / "linli.test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "linli.json"
RUNBOOK = ROOT / "docs" / "runbook.md"
SEVERITIES = {"critical", "warning"}

# Metrics of others the rules and the dashboard use, and where they come from.
RABBITMQ_METRICS = {
    # rabbitmq_prometheus, /metrics (aggregated): the resource alarms.
    "rabbitmq_alarms_memory_used_watermark", "rabbitmq_alarms_free_disk_space_watermark",
    # /metrics/detailed?family=queue_coarse_metrics&family=queue_consumer_count: per queue.
    "rabbitmq_detailed_queue_consumers", "rabbitmq_detailed_queue_messages",
    "rabbitmq_detailed_queue_messages_ready",
}
KUBE_METRICS = {"kube_pod_container_status_restarts_total"}  # kube-state-metrics
# Labels an annotation may show: names of queues, services, routes, pods, never a person's data.
SHOWN_LABELS = {"queue", "service", "entrypoint", "route", "instance", "pod", "container"}


def promtool() -> str:
    found = ROOT / "tools" / "promtool"
    if found.exists():
        return str(found)
    found = shutil.which("promtool")
    assert found, "promtool is missing: make promtool (deploy/ensure-promtool.sh)"
    return found


def rule_groups() -> dict:
    return yaml.safe_load(RULES.read_text())["spec"]


def alerts() -> list[dict]:
    return [rule for group in rule_groups()["groups"] for rule in group["rules"] if "alert" in rule]


def run_promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def with_rules(tmp_path: Path, groups: dict) -> Path:
    """The rules as Prometheus's own rules file, beside the promtool tests that load it."""
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(groups, sort_keys=False))
    shutil.copy(PROMTOOL_TESTS, tmp_path / "linli.test.yml")
    return tmp_path


def test_promtool_accepts_the_rules(tmp_path):
    with_rules(tmp_path, rule_groups())
    result = run_promtool("check", "rules", "rules.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in result.stdout


def test_each_alert_fires_when_it_should_and_none_when_all_is_healthy(tmp_path):
    with_rules(tmp_path, rule_groups())
    result = run_promtool("test", "rules", "linli.test.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr

    tests = yaml.safe_load(PROMTOOL_TESTS.read_text())["tests"]
    fired = {case["alertname"] for test in tests for case in test["alert_rule_test"] if case["exp_alerts"]}
    (healthy,) = [test for test in tests if test["name"] == "healthy"]
    quiet = {case["alertname"] for case in healthy["alert_rule_test"] if not case["exp_alerts"]}
    names = {rule["alert"] for rule in alerts()}
    assert fired == names, "every alert has a case where it fires"
    assert quiet == names, "and none fires when all is healthy"


def test_the_promtool_tests_fail_on_a_rule_that_does_not_fire(tmp_path):
    """A broken rule is caught (a test that cannot fail checks nothing)."""
    groups = rule_groups()
    for group in groups["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == "LinliOutboxStuck":
                rule["expr"] = rule["expr"].replace("> 120", "> 3600")
    with_rules(tmp_path, groups)
    result = run_promtool("test", "rules", "linli.test.yml", cwd=tmp_path)
    assert result.returncode != 0 and "LinliOutboxStuck" in result.stdout + result.stderr


def test_every_alert_has_a_severity_a_summary_without_personal_data_and_a_runbook_section():
    runbook = RUNBOOK.read_text()
    anchors = {re.sub(r"[^a-z0-9 -]", "", heading.lower()).replace(" ", "-")
               for heading in re.findall(r"^#+ (.+)$", runbook, re.M)}
    for rule in alerts():
        name = rule["alert"]
        assert rule["labels"]["severity"] in SEVERITIES, name
        annotations = rule["annotations"]
        assert {"summary", "description", "runbook_url"} <= set(annotations), name
        assert annotations["runbook_url"] == f"docs/runbook.md#{name.lower()}", name
        assert name.lower() in anchors, f"docs/runbook.md has no section {name}"
        for text in (annotations["summary"], annotations["description"]):
            assert set(re.findall(r"\$labels\.(\w+)", text)) <= SHOWN_LABELS, name


def metric_names(expr: str) -> set[str]:
    """The metric names an expression reads (its identifiers that look like ours or the operators')."""
    return set(re.findall(r"\b((?:linli|rabbitmq|kube)_[a-z0-9_]+)\b", expr))


def linli_metrics() -> set[str]:
    """Every series name services/common/metrics.py exposes (with _total, _bucket ...)."""
    return {sample.name for family in REGISTRY.collect() if family.name.startswith("linli_")
            for sample in family.samples} | {family.name for family in REGISTRY.collect()
                                              if family.name.startswith("linli_") and family.type == "gauge"}


def assert_known(names: set[str], where: str):
    known = linli_metrics() | RABBITMQ_METRICS | KUBE_METRICS
    assert names, where
    assert names <= known, f"{where}: unknown metrics {sorted(names - known)}"


def test_the_rules_name_only_metrics_that_exist():
    from services.common.metrics import (DEAD_LETTERS, HTTP_REQUESTS, HTTP_SECONDS, OUTBOX_BACKLOG, OUTBOX_OLDEST,
                                         SERVICE_RESTARTS, WORKERS)
    # Labelled metrics list their samples once a child exists.
    DEAD_LETTERS.labels("q"), HTTP_REQUESTS.labels("r", "GET", "200"), HTTP_SECONDS.labels("r")
    OUTBOX_BACKLOG.labels("s"), OUTBOX_OLDEST.labels("s"), SERVICE_RESTARTS.labels("s"), WORKERS.labels("s", "e", "ok")
    for rule in alerts():
        assert_known(metric_names(rule["expr"]), rule["alert"])


def test_the_dashboard_is_grafana_json_whose_queries_name_only_metrics_that_exist():
    from services.common.metrics import (DEAD_LETTERS, EVENTS_CONSUMED, EVENTS_PUBLISHED, HTTP_REQUESTS, HTTP_SECONDS,
                                         HTTP_SHED, OUTBOX_BACKLOG, OUTBOX_OLDEST, SERVICE_RESTARTS, WORKER_SECONDS,
                                         WORKERS)
    DEAD_LETTERS.labels("q"), HTTP_REQUESTS.labels("r", "GET", "200"), HTTP_SECONDS.labels("r")
    OUTBOX_BACKLOG.labels("s"), OUTBOX_OLDEST.labels("s"), SERVICE_RESTARTS.labels("s"), WORKERS.labels("s", "e", "ok")
    EVENTS_CONSUMED.labels("q", "ok"), EVENTS_PUBLISHED.labels("s", "t"), HTTP_SHED.labels("gateway")
    WORKER_SECONDS.labels("s", "e")
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 30
    shown = set()
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = metric_names(target["expr"])
            assert_known(names, panel["title"])
            shown |= names
    # What the issue asks to see: requests, errors, p99, outbox, dead letters, queues, restarts.
    assert {"linli_http_requests_total", "linli_http_request_seconds_bucket", "linli_worker_calls_total",
            "linli_outbox_backlog", "linli_outbox_oldest_unsent_seconds", "linli_dead_letter_depth",
            "rabbitmq_detailed_queue_messages", "rabbitmq_detailed_queue_consumers",
            "kube_pod_container_status_restarts_total", "linli_service_restarts_total"} <= shown
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_an_unknown_metric_is_caught():
    with pytest.raises(AssertionError):
        assert_known(metric_names("rate(linli_http_request_total[5m])"), "a misspelt name")
