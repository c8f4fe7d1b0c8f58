"""The install: pyproject.toml's ranges and constraints.txt, the pinned set
that make, CI and the Dockerfile install, say the same thing."""
import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def pins() -> dict[str, str]:
    pinned = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt pins exact versions: {line!r}"
            pinned[canonicalize_name(name)] = version
    return pinned


def test_every_requirement_is_pinned_within_its_range():
    pinned = pins()
    for text in PROJECT["dependencies"] + PROJECT["optional-dependencies"]["test"]:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{requirement.name} is not pinned in constraints.txt (make lock)"
        assert requirement.specifier.contains(pinned[name], prereleases=True), \
            f"constraints.txt pins {requirement.name}=={pinned[name]}, outside pyproject's {requirement.specifier}"


def test_setuptools_with_pkg_resources_is_declared_and_pinned():
    """nameko imports pkg_resources without declaring setuptools; 82 removed it."""
    [setuptools] = [Requirement(text) for text in PROJECT["dependencies"] if text.startswith("setuptools")]
    assert not setuptools.specifier.contains("82.0.0")
    assert int(pins()["setuptools"].split(".")[0]) < 82


def test_python_311_to_313_are_admitted():
    admitted = SpecifierSet(PROJECT["requires-python"])
    assert all(admitted.contains(version) for version in ("3.11.7", "3.12.1", "3.13.0"))


def test_make_and_the_image_install_the_pinned_set():
    assert re.search(r"pip install .*-c \$\(CONSTRAINTS\)", (ROOT / "Makefile").read_text())
    assert re.search(r"pip install -c constraints\.txt", (ROOT / "deploy" / "Dockerfile").read_text())
