"""The kernel (services/common): a leaf that knows no domain, and how a
domain's refusal reaches a caller."""
import ast
import gc
import subprocess
import sys
import weakref
from pathlib import Path

import eventlet
import pytest
from nameko.containers import ServiceContainer
from nameko.extensions import DependencyProvider
from nameko.testing.services import dummy, entrypoint_hook

import services.common

from services.common import runtime  # noqa: F401 -- its patch of nameko's worker teardown is under test
from services.common.errors import Conflict, Forbidden, enforce
from services.common.rules import NotAllowed, RuleBroken
from services.ops.stack import SERVICES


def refuse(error):
    raise error


def test_enforce_returns_what_the_rule_returns():
    assert enforce(lambda status, action: f"{status}:{action}", "open", action="close") == "open:close"


@pytest.mark.parametrize("refusal, error", [(NotAllowed, Forbidden), (RuleBroken, Conflict)])
def test_a_refusal_becomes_the_callers_error_with_its_message_and_details(refusal, error):
    with pytest.raises(error) as raised:
        enforce(refuse, refusal("Not now.", {"next_stage": "submitted"}))
    assert type(raised.value) is error
    assert raised.value.message == "Not now." and raised.value.details == {"next_stage": "submitted"}


def imported_modules(path):
    """Every module a file imports, by its full dotted name (`from services
    import contracts` is services.contracts), wherever the import stands."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def test_the_kernel_knows_no_domain():
    """services/common is a leaf: it imports no contract, no command and no
    service; whatever it must know of them is handed to it (KernelTables'
    `events`, declare_topology's contract, the handlers' subscriptions)."""
    kernel = Path(services.common.__file__).parent
    files = sorted(kernel.rglob("*.py"))
    assert len(files) > 10
    found = {f"{path.relative_to(kernel)}: {name}" for path in files for name in imported_modules(path)
             if name.startswith("services.") and not name.startswith("services.common")}
    assert found == set()


@pytest.mark.parametrize("service", ["patrol", "donations", "welfare", "volunteers", "notifications"])
def test_a_domain_states_its_rules_with_the_standard_library_only(service):
    """A rule in domain.py is pure: no marshmallow, nameko or SQLAlchemy, and no
    other part of Linli but services.common.rules (how a rule says no, itself
    standard library only)."""
    path = Path(services.common.__file__).parents[1] / service / "domain.py"
    found = {name for name in imported_modules(path)
             if name.split(".")[0] not in sys.stdlib_module_names and not name.startswith("services.common.rules")
             and name != "__future__.annotations"}
    assert found == set()


def test_the_rules_module_is_standard_library_only():
    path = Path(services.common.__file__).parent / "rules.py"
    assert {name.split(".")[0] for name in imported_modules(path)} <= set(sys.stdlib_module_names)


@pytest.mark.parametrize("module", [f"services.{name}.service" for name in SERVICES])
def test_every_service_process_runs_with_the_kernels_garbage_collector_settings(module):
    """As `nameko run` starts it: a fresh interpreter importing the service."""
    probe = (f"import gc, {module}; settings, frozen = gc.get_threshold(), gc.get_freeze_count(); "
             "from services.common import runtime; "
             "print(settings == (runtime.GC_YOUNG_THRESHOLD, *runtime.GC_OLDER_THRESHOLDS), frozen > 10_000)")
    ran = subprocess.run([sys.executable, "-W", "ignore", "-c", probe], capture_output=True, text=True,
                         timeout=60, cwd=Path(services.common.__file__).parents[2])
    assert ran.stdout.split() == ["True", "True"], ran.stderr[-2000:]


class _Proxy:
    """What an RPC proxy or the database gives a worker: it holds the worker's context."""

    def __init__(self, worker_ctx):
        self.worker_ctx = worker_ctx


class _HoldsTheWorker(DependencyProvider):
    def __init__(self):
        self.made = []

    def get_dependency(self, worker_ctx):
        proxy = _Proxy(worker_ctx)
        self.made.append(weakref.ref(proxy))
        return proxy


class _Served:
    name = "served"
    held = _HoldsTheWorker()

    @dummy
    def work(self):
        return "done"


def test_a_finished_worker_is_freed_at_once_not_left_to_the_garbage_collector():
    """Its context held the service instance, whose dependencies held the
    context: every worker was a cycle, freed only by a collection (one of
    126,000 such objects paused the gateway 184 ms under an overload)."""
    container = ServiceContainer(_Served, config={})
    container.start()
    gc.disable()
    try:
        for _ in range(3):
            with entrypoint_hook(container, "work") as work:
                assert work() == "done"
        eventlet.sleep(0)
        provider = next(iter(container.dependencies))
        assert len(provider.made) == 3
        assert [ref() for ref in provider.made] == [None, None, None]
    finally:
        gc.enable()
        container.stop()
