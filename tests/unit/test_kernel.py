"""The kernel (services/common): a leaf that knows no domain, and how a
domain's refusal reaches a caller."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

import services.common

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
