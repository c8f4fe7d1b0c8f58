"""deploy/ checked without a container engine or a cluster (neither is on this
machine or CI): every Kubernetes document against Kubernetes' own schemas
(kubernetes-validate, strict), the operators' custom resources against their
CRDs' schemas (excerpts in tests/schemas/), docker-compose.yml against the
compose-spec, and all of them against services.ops.stack and deploy/config:
every service runs its own class with its own config file, gets every
setting that has no usable default, at the documented replica counts."""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import check_jsonschema
import jsonschema
import kubernetes_validate
import pytest
import yaml

from services.ops import brokerusers
from services.ops.stack import BACKENDS, SERVICE_CLASSES

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
SCHEMAS = ROOT / "tests" / "schemas"
K8S_VERSION = "1.30.0"

# The replica counts deploy/README.md documents: compose, and in Kubernetes the
# Deployment's count or, where an autoscaler owns it, its (min, max).
COMPOSE_REPLICAS = {"welfare": 2, "notifications": 1, "patrol": 1, "donations": 3, "volunteers": 1, "gateway": 2}
K8S_REPLICAS = {"welfare": 2, "notifications": 1, "patrol": 1, "donations": (3, 6), "volunteers": 1,
                "gateway": (2, 4)}
RABBITMQ_NODES = 3

# What the operators make for a cluster named N (their documented conventions).
RABBITMQ_SECRET_KEYS = {"username", "password"}   # Secret N-default-user, Service N
POSTGRES_SECRET_KEYS = {"username", "password"}   # Secret N-app, Service N-rw (the primary)

# tests/schemas/: the operators' CRD schemas, by (apiVersion, kind).
CRD_SCHEMAS = {"rabbitmqcluster.json", "cnpg-cluster.json", "cnpg-database.json", "cnpg-scheduledbackup.json",
               "barmancloud-objectstore.json", "monitoring-podmonitor.json", "monitoring-prometheusrule.json",
               "rabbitmq-user.json", "rabbitmq-permission.json", "rabbitmq-topicpermission.json"}
# The topology operator's Secret of a User named N: N-user-credentials.
USER_SECRET_KEYS = {"username", "password"}


# -- loading -----------------------------------------------------------------------------

class PlainYaml(yaml.SafeLoader):
    """YAML as compose and Kubernetes read it: without the `${VAR:default}`
    resolver that nameko adds to every SafeLoader once a config is loaded
    (otherwise `${X:?message}` here would depend on which test ran first)."""


PlainYaml.yaml_implicit_resolvers = {
    first: [rule for rule in rules if rule[0] != "!env_var"]
    for first, rules in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def k8s_documents() -> list[tuple[str, dict]]:
    documents = []
    for path in sorted(K8S.glob("*.yaml")):
        for index, document in enumerate(yaml.load_all(path.read_text(), Loader=PlainYaml)):
            if document is not None:
                documents.append((f"{path.name}#{index}", document))
    return documents


DOCUMENTS = k8s_documents()


def crd_schemas() -> dict[tuple[str, str], dict]:
    schemas = {}
    for name in CRD_SCHEMAS:
        vendored = json.loads((SCHEMAS / name).read_text())
        source = vendored["source"]
        schemas[(f"{source['group']}/{source['version']}", source["kind"])] = vendored["openAPIV3Schema"]
    return schemas


CRDS = crd_schemas()


def is_custom(document: dict) -> bool:
    """An operator's kind: its API group is a domain outside Kubernetes' own (*.k8s.io)."""
    group = document["apiVersion"].rpartition("/")[0]
    return "." in group and not group.endswith(".k8s.io")


def of_kind(kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for _, d in DOCUMENTS if d["kind"] == kind}


def the_one(kind: str) -> dict:
    found = list(of_kind(kind).values())
    assert len(found) == 1, f"expected one {kind} in deploy/k8s, found {len(found)}"
    return found[0]


def compose() -> dict:
    return yaml.load((DEPLOY / "docker-compose.yml").read_text(), Loader=PlainYaml)  # merges `<<: *linli`


def config_reads(service: str) -> dict[str, str]:
    """{VAR: default} of every ${VAR:default} deploy/config/<service>.yml reads."""
    text = (DEPLOY / "config" / f"{service}.yml").read_text()
    return dict(re.findall(r"\$\{([A-Z0-9_]+):?([^}]*)\}", text))


def needed_vars(service: str) -> set[str]:
    """The variables whose default only works on a developer's machine: broker
    and database on localhost or SQLite, no token secret, listening on 127.0.0.1."""
    return {var for var, default in config_reads(service).items()
            if default == "" or any(word in default for word in ("localhost", "127.0.0.1", "sqlite"))}


def dockerfile_env() -> dict[str, str]:
    text = (DEPLOY / "Dockerfile").read_text()
    block = re.search(r"^ENV (.*?)(?<!\\)\n", text, re.S | re.M).group(1)
    return dict(re.findall(r"([A-Z_]+)=(\S+)", block))


def service_command(service: str) -> list[str]:
    return ["python", "-m", "nameko", "run", "--config", f"deploy/config/{service}.yml", SERVICE_CLASSES[service]]


def deployment(service: str) -> dict:
    return of_kind("Deployment")[f"linli-{service}"]


def containers(document: dict) -> list[dict]:
    return document["spec"]["template"]["spec"]["containers"]


def container_env(document: dict) -> tuple[list[dict], dict[str, str]]:
    """(env entries in order, {name: value} of every ConfigMap it takes whole)."""
    (container,) = containers(document)
    configmaps = of_kind("ConfigMap")
    from_maps = {}
    for source in container.get("envFrom", []):
        from_maps |= configmaps[source["configMapRef"]["name"]]["data"]
    return container.get("env", []), from_maps


def closed(schema):
    """The schema with every object that lists its properties closed to others,
    as the API server's strict field validation (kubectl's default) rejects
    unknown fields of a structural CRD schema instead of pruning them quietly."""
    schema = copy.deepcopy(schema)

    def close(node):
        if isinstance(node, dict):
            if ("properties" in node and "additionalProperties" not in node
                    and not node.get("x-kubernetes-preserve-unknown-fields")):
                node["additionalProperties"] = False
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)
    close(schema)
    return schema


def validate_custom(document: dict):
    key = (document["apiVersion"], document["kind"])
    assert key in CRDS, f"no vendored CRD schema for {key} in tests/schemas/"
    jsonschema.Draft7Validator(closed(CRDS[key])).validate(document)


def compose_spec() -> dict:
    path = Path(check_jsonschema.__file__).parent / "builtin_schemas" / "vendor" / "compose-spec.json"
    return json.loads(path.read_text())


def validate_compose(document: dict):
    jsonschema.validators.validator_for(compose_spec())(compose_spec()).validate(document)


# -- the schemas ------------------------------------------------------------------------------

BUILTIN = [d for d in DOCUMENTS if not is_custom(d[1])]
CUSTOM = [d for d in DOCUMENTS if is_custom(d[1])]


@pytest.mark.parametrize("where,document", BUILTIN, ids=[where for where, _ in BUILTIN])
def test_kubernetes_documents_match_kubernetes_schemas(where, document):
    kubernetes_validate.validate(document, K8S_VERSION, strict=True)


@pytest.mark.parametrize("where,document", CUSTOM, ids=[where for where, _ in CUSTOM])
def test_custom_resources_match_their_operators_crds(where, document):
    validate_custom(document)


def test_documents_of_both_sorts_are_there():
    assert {d["kind"] for _, d in CUSTOM} == {"RabbitmqCluster", "Cluster", "Database", "ScheduledBackup",
                                              "ObjectStore", "PodMonitor", "PrometheusRule",
                                              "User", "Permission", "TopicPermission"}
    assert {"Namespace", "ConfigMap", "Secret", "Job", "Deployment", "Service",
            "HorizontalPodAutoscaler", "PodDisruptionBudget"} <= {d["kind"] for _, d in BUILTIN}


def test_compose_file_matches_the_compose_spec():
    validate_compose(compose())


def test_the_validators_reject_what_a_cluster_or_compose_would():
    """Each check above fails on a broken document (a test that cannot fail checks nothing)."""
    broken = copy.deepcopy(deployment("welfare"))
    broken["spec"]["replica"] = 2  # a misspelt field
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)
    broken = copy.deepcopy(deployment("welfare"))
    container = containers(broken)[0]
    container["envFrom"] = container["envFrom"][0]  # a mapping where a list belongs
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)

    rabbitmq = copy.deepcopy(the_one("RabbitmqCluster"))
    rabbitmq["spec"]["replicas"] = "three"
    with pytest.raises(jsonschema.ValidationError):
        validate_custom(rabbitmq)
    postgres = copy.deepcopy(the_one("Cluster"))
    postgres["spec"]["instance"] = 3  # unknown field
    with pytest.raises(jsonschema.ValidationError):
        validate_custom(postgres)
    database = copy.deepcopy(next(iter(of_kind("Database").values())))
    del database["spec"]["owner"]
    with pytest.raises(jsonschema.ValidationError):
        validate_custom(database)
    permission = copy.deepcopy(of_kind("Permission")["linli-patrol"])
    permission["spec"]["permissions"]["reads"] = ".*"  # unknown field
    with pytest.raises(jsonschema.ValidationError):
        validate_custom(permission)
    topic = copy.deepcopy(next(iter(of_kind("TopicPermission").values())))
    del topic["spec"]["vhost"]
    with pytest.raises(jsonschema.ValidationError):
        validate_custom(topic)
    monitor = copy.deepcopy(of_kind("PodMonitor")["linli"])
    monitor["spec"]["podMetricsEndpoints"][0]["targetport"] = "metrics"  # unknown field
    with pytest.raises(jsonschema.ValidationError):
        validate_custom(monitor)
    rules = copy.deepcopy(the_one("PrometheusRule"))
    del rules["spec"]["groups"][0]["name"]
    with pytest.raises(jsonschema.ValidationError):
        validate_custom(rules)
    backup = copy.deepcopy(the_one("ScheduledBackup"))
    backup["spec"]["method"] = "tape"  # not one of the methods
    with pytest.raises(jsonschema.ValidationError):
        validate_custom(backup)

    broken = compose()
    broken["services"]["welfare"]["deploy"] = {"replica": 2}
    with pytest.raises(jsonschema.ValidationError):
        validate_compose(broken)


def test_vendored_crd_schemas_say_where_they_come_from():
    readme = (SCHEMAS / "README.md").read_text()
    for name in CRD_SCHEMAS:
        source = json.loads((SCHEMAS / name).read_text())["source"]
        assert re.fullmatch(r"[0-9a-f]{40}", source["commit"])
        assert name in readme and source["commit"] in readme and source["path"] in readme


# -- every service, everywhere ---------------------------------------------------------

def test_every_service_runs_its_class_with_its_config_in_compose_and_kubernetes():
    services = compose()["services"]
    assert set(services) == set(SERVICE_CLASSES) | {"rabbitmq", "postgres", "init", "proxy"}
    assert set(of_kind("Deployment")) == {f"linli-{service}" for service in SERVICE_CLASSES}
    for service in SERVICE_CLASSES:
        assert (ROOT / "deploy" / "config" / f"{service}.yml").is_file()
        assert services[service]["command"] == service_command(service), service
        (container,) = containers(deployment(service))
        assert container["command"] == service_command(service), service


def test_the_dockerfile_documents_each_services_command():
    text = (DEPLOY / "Dockerfile").read_text()
    listed = dict(re.findall(r"^#\s+(\w+):\s+(python -m nameko run .*)$", text, re.M))
    echoed = re.findall(r"echo '  (python -m nameko run [^']*)'", text)
    expected = {service: " ".join(service_command(service)) for service in SERVICE_CLASSES}
    assert listed == expected
    assert sorted(echoed) == sorted(expected.values())
    assert "DB_DRIVER" not in text and "not green" not in text


def test_compose_gives_each_service_every_setting_it_needs():
    env = compose()["x-linli"]["environment"]
    for service in SERVICE_CLASSES:
        given = set(compose()["services"][service]["environment"]) | set(dockerfile_env())
        assert needed_vars(service) <= given, service
        assert {"AMQP_URI", f"LINLI_{service.upper()}_DB"} <= needed_vars(service)
    assert "LINLI_JWT_SECRET" in needed_vars("gateway")
    init = (DEPLOY / "postgres-init.sql").read_text()
    owners = dict(re.findall(r"CREATE DATABASE (\w+) OWNER (\w+);", init))
    roles = set(re.findall(r"CREATE ROLE (\w+) LOGIN PASSWORD", init))
    for service in SERVICE_CLASSES:
        url = env[f"LINLI_{service.upper()}_DB"]
        user, database = re.fullmatch(r"postgresql://(\w+):[^@]+@postgres:5432/(\w+)", url).groups()
        # Its own database, as the role that owns it and no other.
        assert database == f"linli_{service}" and owners[database] == user and user in roles, url
    assert len(set(owners.values())) == len(SERVICE_CLASSES)


def test_kubernetes_gives_each_service_every_setting_it_needs():
    secrets = {the_one("RabbitmqCluster")["metadata"]["name"] + "-default-user": RABBITMQ_SECRET_KEYS,
               the_one("Cluster")["metadata"]["name"] + "-app": POSTGRES_SECRET_KEYS,
               "linli-secrets": set(of_kind("Secret")["linli-secrets"]["stringData"])}
    # Each database role's password Secret (basic-auth: username, password).
    secrets |= {role["passwordSecret"]["name"]: POSTGRES_SECRET_KEYS
                for role in the_one("Cluster")["spec"]["managed"]["roles"]}
    secrets |= {f"{user}-user-credentials": USER_SECRET_KEYS for user in of_kind("User")}
    for service in SERVICE_CLASSES:
        env, from_maps = container_env(deployment(service))
        given = {e["name"] for e in env} | set(from_maps) | set(dockerfile_env())
        assert needed_vars(service) <= given, service
    for document in list(of_kind("Deployment").values()) + list(of_kind("Job").values()):
        env, from_maps = container_env(document)
        defined = set(from_maps)
        for entry in env:
            # $(VAR) expands only variables defined before it.
            for var in re.findall(r"\$\((\w+)\)", entry.get("value", "")):
                assert var in defined, f"{document['metadata']['name']}: {entry['name']} uses $({var}) before it is set"
            ref = entry.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["key"] in secrets.get(ref["name"], ()), f"{document['metadata']['name']}: {ref}"
            defined.add(entry["name"])


def test_kubernetes_urls_name_the_operators_services_and_databases():
    rabbitmq = the_one("RabbitmqCluster")["metadata"]["name"]
    postgres = the_one("Cluster")
    databases = {d["spec"]["name"] for d in of_kind("Database").values()}
    assert databases == {f"linli_{service}" for service in SERVICE_CLASSES}
    for database in of_kind("Database").values():
        assert database["spec"]["cluster"]["name"] == postgres["metadata"]["name"]
    (job,) = of_kind("Job").values()
    job_env = {e["name"]: e.get("value") for e in container_env(job)[0]}
    for service in SERVICE_CLASSES:
        env = {e["name"]: e.get("value") for e in container_env(deployment(service))[0]}
        for values in (env, job_env):
            assert re.fullmatch(rf"amqp://[^@]+@{rabbitmq}:5672/", values["AMQP_URI"])
            assert re.fullmatch(rf"postgresql://[^@]+@{postgres['metadata']['name']}-rw:5432/linli_{service}",
                                values[f"LINLI_{service.upper()}_DB"])
        # Only its own database.
        assert not {f"LINLI_{other.upper()}_DB" for other in SERVICE_CLASSES if other != service} & set(env)


def test_configmap_keys_are_settings_the_config_files_read():
    """A misspelt key would be ignored quietly and the default used."""
    for service in SERVICE_CLASSES:
        own = of_kind("ConfigMap")[f"linli-{service}"]["data"]
        assert set(own) <= set(config_reads(service)), service
    read_somewhere = set().union(*(config_reads(service) for service in SERVICE_CLASSES))
    assert set(of_kind("ConfigMap")["linli-config"]["data"]) <= read_somewhere


# -- replicas, autoscaling, capacity ---------------------------------------------------------

def test_replica_counts_are_the_documented_ones():
    services = compose()["services"]
    assert {s: services[s]["deploy"]["replicas"] for s in SERVICE_CLASSES} == COMPOSE_REPLICAS
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h for h in of_kind("HorizontalPodAutoscaler").values()}
    k8s = {}
    for service in SERVICE_CLASSES:
        hpa = hpas.get(f"linli-{service}")
        k8s[service] = ((hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) if hpa
                        else deployment(service)["spec"]["replicas"])
    assert k8s == K8S_REPLICAS
    assert the_one("RabbitmqCluster")["spec"]["replicas"] == RABBITMQ_NODES
    readme = (DEPLOY / "README.md").read_text()
    for service in SERVICE_CLASSES:
        counts = K8S_REPLICAS[service]
        k8s_text = f"{counts[0]}–{counts[1]} (HPA)" if isinstance(counts, tuple) else str(counts)
        row = rf"\|\s*{service}\s*\|\s*{COMPOSE_REPLICAS[service]}\s*\|\s*{re.escape(k8s_text)}\s*\|"
        assert re.search(row, readme), f"deploy/README.md: no row `| {service} | ... |` with these counts"


def test_autoscalers_target_deployments_that_exist_and_can_be_measured():
    hpas = of_kind("HorizontalPodAutoscaler")
    assert {h["spec"]["scaleTargetRef"]["name"] for h in hpas.values()} == {"linli-donations", "linli-gateway"}
    for hpa in hpas.values():
        assert hpa["apiVersion"] == "autoscaling/v2"
        target = hpa["spec"]["scaleTargetRef"]
        assert (target["apiVersion"], target["kind"]) == ("apps/v1", "Deployment")
        scaled = of_kind("Deployment")[target["name"]]
        assert scaled["metadata"]["namespace"] == hpa["metadata"]["namespace"]
        # A count in the Deployment would reset the autoscaler's on every apply.
        assert "replicas" not in scaled["spec"], target["name"]
        # Utilization is measured against the request.
        for metric in hpa["spec"]["metrics"]:
            resource = metric["resource"]["name"]
            assert all(resource in c["resources"]["requests"] for c in containers(scaled))


def test_scaled_compose_services_publish_no_host_port():
    """Two containers cannot both bind one host port: the proxy publishes HTTPS
    (and :80, which redirects), in front of the gateways' :8000."""
    services = compose()["services"]
    for name, service in services.items():
        if service.get("deploy", {}).get("replicas", 1) > 1:
            assert "ports" not in service, name
    assert services["proxy"]["ports"] == ["443:443", "80:80"]
    assert "gateway:8000" in (DEPLOY / "nginx.conf").read_text()


def connections_per_process(env: dict) -> int:
    """The most one process may open: a service's pool is max_workers + 2, the
    gateway's DB_POOL_SIZE (its workers mostly wait on services); both overflow by 5."""
    def setting(service: str, var: str) -> int:
        return int(env.get(var, config_reads(service)[var]))
    return max(setting("donations", "LINLI_MAX_WORKERS") + 2, setting("gateway", "LINLI_GATEWAY_DB_POOL_SIZE")) + 5


def test_postgres_takes_as_many_connections_as_the_processes_may_open():
    spec = compose()
    allowed = int(re.search(r"max_connections=(\d+)", " ".join(spec["services"]["postgres"]["command"])).group(1))
    per_process = connections_per_process(spec["x-linli"]["environment"])
    processes = sum(COMPOSE_REPLICAS.values()) + 1  # and init
    assert processes * per_process <= allowed - 3  # superuser_reserved_connections

    allowed = int(the_one("Cluster")["spec"]["postgresql"]["parameters"]["max_connections"])
    per_process = connections_per_process(of_kind("ConfigMap")["linli-config"]["data"])
    pods = sum(c[1] if isinstance(c, tuple) else c for c in K8S_REPLICAS.values()) + 1  # and the Job
    assert pods * per_process <= allowed - 3


# -- probes, resources, users ------------------------------------------------------------------

def test_every_pod_runs_as_the_images_user_within_limits():
    user = re.search(r"^USER (\d+)$", (DEPLOY / "Dockerfile").read_text(), re.M).group(1)
    for document in list(of_kind("Deployment").values()) + list(of_kind("Job").values()):
        pod = document["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert str(pod["securityContext"]["runAsUser"]) == user
        for container in pod["containers"]:
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][bound]), document["metadata"]["name"]
            assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_probes_ask_what_each_service_serves():
    gateway_source = (ROOT / "services" / "gateway" / "service.py").read_text()
    for service in SERVICE_CLASSES:
        (container,) = containers(deployment(service))
        _env, from_maps = container_env(deployment(service))
        for probe in ("livenessProbe", "readinessProbe"):
            if service in BACKENDS:
                # Metrics on the port this pod's ConfigMap gives, which its config file reads,
                # on every address of the pod, so the kubelet (and Prometheus) reach it.
                port = from_maps["LINLI_METRICS_PORT"]
                assert {"LINLI_METRICS_PORT", "LINLI_METRICS_ADDRESS"} <= set(config_reads(service))
                assert from_maps["LINLI_METRICS_ADDRESS"] == "0.0.0.0"
                check = container[probe]["httpGet"]
                (metrics,) = [p for p in container["ports"] if p["name"] == check["port"]]
                assert (check["path"], str(metrics["containerPort"])) == ("/metrics", port)
            else:
                check = container[probe]["httpGet"]
                (http,) = [p for p in container["ports"] if p["name"] == check["port"]]
                assert str(http["containerPort"]) == from_maps["LINLI_HTTP_PORT"]
                route = check["path"].removeprefix("/api/v1")
                assert f'@api("GET", "{route}"' in gateway_source, check["path"]
    assert containers(deployment("gateway"))[0]["readinessProbe"]["httpGet"]["path"] == "/api/v1/ready"
    service = of_kind("Service")["linli-gateway"]
    assert service["spec"]["selector"] == deployment("gateway")["spec"]["selector"]["matchLabels"]

    services = compose()["services"]
    port = compose()["x-linli"]["environment"]["LINLI_METRICS_PORT"]
    for backend in BACKENDS:
        assert f"http://127.0.0.1:{port}/metrics" in " ".join(services[backend]["healthcheck"]["test"])
    assert "/api/v1/ready" in " ".join(services["gateway"]["healthcheck"]["test"])


def test_what_speaks_for_a_caller_reaches_the_gateway_only():
    """The token secret and the key that vouches for RPC calls: a compromised
    service holding either could act as any caller towards every other."""
    from services.ops.stack import GATEWAY_ONLY
    assert {"LINLI_JWT_SECRET", "LINLI_CALLER_SIGNING_KEY"} <= set(GATEWAY_ONLY)
    services = compose()["services"]
    for service in SERVICE_CLASSES:
        env, from_maps = container_env(deployment(service))
        in_k8s = {e["name"] for e in env} | set(from_maps)
        in_compose = set(services[service]["environment"])
        for given in (in_k8s, in_compose):
            assert "LINLI_CALLER_PUBLIC_KEY" in given, service
            assert bool(set(GATEWAY_ONLY) & given) == (service == "gateway"), service
            if service == "gateway":
                assert set(GATEWAY_ONLY) <= given
        assert ("LINLI_CALLER_SIGNING_KEY" in needed_vars(service)) == (service == "gateway"), service
        assert "LINLI_CALLER_PUBLIC_KEY" in needed_vars(service), service
    for name in ("init", "proxy", "rabbitmq", "postgres"):
        assert not set(GATEWAY_ONLY) & set(services[name].get("environment", {})), name


def test_each_service_connects_as_its_own_broker_user_with_the_rules_linli_up_gives_it():
    cluster = the_one("RabbitmqCluster")["metadata"]["name"]
    users, permissions = of_kind("User"), of_kind("Permission")
    assert set(users) == set(permissions) == {f"linli-{service}" for service in SERVICE_CLASSES}
    topic = {}
    for document in of_kind("TopicPermission").values():
        topic.setdefault(document["spec"]["userReference"]["name"], []).append(document["spec"]["permissions"])
    for service in SERVICE_CLASSES:
        user = f"linli-{service}"
        for document in (users[user], permissions[user]):
            assert document["spec"]["rabbitmqClusterReference"] == {"name": cluster}
        assert "tags" not in users[user]["spec"]  # no management access
        assert permissions[user]["spec"]["userReference"] == {"name": user}
        assert permissions[user]["spec"]["vhost"] == "/"
        assert permissions[user]["spec"]["permissions"] == brokerusers.permissions(service)
        key = lambda rule: rule["exchange"]  # noqa: E731
        assert sorted(topic[user], key=key) == sorted(brokerusers.topic_permissions(service), key=key), service
        # The Deployment reads its own user's Secret, and no other broker credentials.
        env, _ = container_env(deployment(service))
        refs = {entry["valueFrom"]["secretKeyRef"]["name"] for entry in env
                if entry["name"].startswith("RABBITMQ_")}
        assert refs == {f"{user}-user-credentials"}, service
    # Declaring every queue stays with the administrator (the default user).
    (job,) = of_kind("Job").values()
    assert {entry["valueFrom"]["secretKeyRef"]["name"] for entry in container_env(job)[0]
            if entry["name"].startswith("RABBITMQ_")} == {f"{cluster}-default-user"}


def test_compose_runs_each_service_as_its_own_broker_user():
    services = compose()["services"]
    init = services["init"]
    assert "linli broker-users" in init["command"][-1]
    for service in SERVICE_CLASSES:
        variable = brokerusers.password_variable(service)
        env = services[service]["environment"]
        user = brokerusers.username(service, "/").replace("@", "%40").replace("/", "%2F")
        assert re.fullmatch(rf"amqp://{re.escape(user)}:\$\{{{variable}:\?[^}}]+\}}@rabbitmq:5672/", env["AMQP_URI"])
        # No service sees another's broker password; init, which makes the users, sees them all.
        assert not any(key.endswith("_BROKER_PASSWORD") for key in env), service
        assert variable in init["environment"]


# -- metrics, disruption budgets, database roles, backups ---------------------------------------

def pods_of(selector: dict) -> list[str]:
    """The Deployments whose pods a label selector picks."""
    return [name for name, d in of_kind("Deployment").items()
            if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()]


def test_prometheus_scrapes_every_service_where_it_serves_its_metrics():
    monitor = of_kind("PodMonitor")["linli"]["spec"]
    assert sorted(pods_of(monitor["selector"]["matchLabels"])) == sorted(f"linli-{s}" for s in SERVICE_CLASSES)
    endpoints = {e["port"]: e["path"] for e in monitor["podMetricsEndpoints"]}
    gateway_source = (ROOT / "services" / "gateway" / "service.py").read_text()
    for service in SERVICE_CLASSES:
        (container,) = containers(deployment(service))
        served = {p["name"] for p in container["ports"]} & set(endpoints)
        assert len(served) == 1, service  # scraped once, on a named port it has
        (port,) = served
        if service in BACKENDS:
            assert endpoints[port] == "/metrics"
            # A Service names the same port, for discovery by Service.
            (named,) = [s for s in of_kind("Service").values()
                        if s["spec"]["selector"] == deployment(service)["spec"]["selector"]["matchLabels"]]
            assert {"name": "metrics", "port": 9100, "targetPort": "metrics"} in named["spec"]["ports"]
        else:
            assert f'@api("GET", "{endpoints[port].removeprefix("/api/v1")}"' in gateway_source
    rabbitmq = of_kind("PodMonitor")["linli-rabbitmq"]["spec"]
    cluster = the_one("RabbitmqCluster")["metadata"]["name"]
    assert rabbitmq["selector"]["matchLabels"]["app.kubernetes.io/name"] == cluster
    paths = {e["path"]: e.get("params", {}) for e in rabbitmq["podMetricsEndpoints"]}
    assert set(paths["/metrics/detailed"]["family"]) == {"queue_coarse_metrics", "queue_consumer_count"}
    assert "/metrics" in paths  # the alarms


def test_every_service_rabbitmq_and_postgres_have_a_disruption_budget():
    budgets = of_kind("PodDisruptionBudget")
    for service in SERVICE_CLASSES:
        matching = [b for b in budgets.values()
                    if pods_of(b["spec"]["selector"]["matchLabels"]) == [f"linli-{service}"]]
        assert len(matching) == 1, service
        # One pod at a time: a drain is never blocked for good, even with one replica.
        assert matching[0]["spec"] == {**matching[0]["spec"], "maxUnavailable": 1}
    cluster = the_one("RabbitmqCluster")["metadata"]["name"]
    assert budgets[cluster]["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": cluster}
    assert budgets[cluster]["spec"]["maxUnavailable"] == 1  # a majority of three stays up
    # CloudNativePG makes its own (enablePDB defaults to true): not switched off here.
    assert the_one("Cluster")["spec"].get("enablePDB", True) is True


def test_each_service_has_its_own_database_role_owning_only_its_database():
    cluster = the_one("Cluster")
    roles = {role["name"]: role for role in cluster["spec"]["managed"]["roles"]}
    assert set(roles) == {f"linli_{service}" for service in SERVICE_CLASSES}
    owners = {d["spec"]["name"]: d["spec"]["owner"] for d in of_kind("Database").values()}
    assert owners == {f"linli_{service}": f"linli_{service}" for service in SERVICE_CLASSES}
    examples = of_kind("Secret")
    for service in SERVICE_CLASSES:
        role = roles[f"linli_{service}"]
        assert role["login"] is True and not role.get("superuser") and not role.get("createrole")
        secret = role["passwordSecret"]["name"]
        assert examples[secret]["type"] == "kubernetes.io/basic-auth"
        assert examples[secret]["stringData"]["username"] == role["name"]
        # The service, and the init Job for its database, log in as that role.
        env, _ = container_env(deployment(service))
        refs = {e["name"]: e["valueFrom"]["secretKeyRef"]["name"] for e in env if "valueFrom" in e}
        assert refs["PGUSER"] == refs["PGPASSWORD"] == secret, service
        (job,) = of_kind("Job").values()
        job_refs = {e["name"]: e["valueFrom"]["secretKeyRef"]["name"]
                    for e in container_env(job)[0] if "valueFrom" in e}
        assert job_refs[f"{service.upper()}_PGUSER"] == job_refs[f"{service.upper()}_PGPASSWORD"] == secret
    # Every role's connections fit: its pods at their most, each with its pool.
    per_process = connections_per_process(of_kind("ConfigMap")["linli-config"]["data"])
    for service, counts in K8S_REPLICAS.items():
        pods = counts[1] if isinstance(counts, tuple) else counts
        assert pods * per_process <= roles[f"linli_{service}"]["connectionLimit"], service


def test_postgres_is_backed_up_to_object_storage_every_night():
    cluster = the_one("Cluster")["spec"]
    (plugin,) = cluster["plugins"]
    store = the_one("ObjectStore")
    assert plugin["name"] == "barman-cloud.cloudnative-pg.io" and plugin["isWALArchiver"] is True
    assert plugin["parameters"]["barmanObjectName"] == store["metadata"]["name"]
    credentials = store["spec"]["configuration"]["s3Credentials"]
    example = of_kind("Secret")[credentials["accessKeyId"]["name"]]
    assert {credentials["accessKeyId"]["key"], credentials["secretAccessKey"]["key"]} <= set(example["stringData"])
    backup = the_one("ScheduledBackup")["spec"]
    assert backup["cluster"]["name"] == the_one("Cluster")["metadata"]["name"]
    assert (backup["method"], backup["pluginConfiguration"]["name"]) == ("plugin", plugin["name"])
    assert len(backup["schedule"].split()) == 6  # the operator's cron has seconds first


def test_rabbitmq_is_a_supported_4x_release_everywhere():
    for image in (the_one("RabbitmqCluster")["spec"]["image"], compose()["services"]["rabbitmq"]["image"]):
        assert re.fullmatch(r"rabbitmq:4\.\d+(\.\d+)?-management", image), image
