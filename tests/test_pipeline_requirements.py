"""The pipeline steps' pinned Python dependencies: the whole tree, and the versions the tests run."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from pipeline.commands import LOADTEST_REQUIREMENTS, STEP_REQUIREMENTS
from tests.templates import ROOT

FILES = {
    "steps": ROOT / STEP_REQUIREMENTS.rsplit(" ", 1)[1],
    "loadtest": ROOT / LOADTEST_REQUIREMENTS.rsplit(" ", 1)[1],
}
PYTHONS = ("3.11", "3.12")  # .venv's, and the pipeline's CodeBuild runtime


def pins(path: Path) -> dict[str, str]:
    """`name==version` lines, following `-r` includes."""
    found: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-r "):
            found |= pins(path.parent / line[3:].strip())
            continue
        name, separator, version = line.partition("==")
        assert separator, f"{path.name}: {line!r} is not pinned exactly"
        found[canonicalize_name(name.split("[")[0])] = version
    return found


def dependencies(name: str) -> set[str]:
    """What an installed distribution requires on any of PYTHONS (extras aside)."""
    needed: set[str] = set()
    for text in importlib.metadata.requires(name) or []:
        requirement = Requirement(text)
        for python in PYTHONS:
            environment: dict[str, str] = {
                **{key: str(value) for key, value in default_environment().items()},
                "python_version": python,
                "python_full_version": f"{python}.0",
                "extra": "",
            }
            if requirement.marker is None or requirement.marker.evaluate(environment):
                needed.add(str(canonicalize_name(requirement.name)))
    return needed


@pytest.mark.parametrize("which", sorted(FILES))
def test_pins_equal_what_the_tests_run(which: str) -> None:
    for name, version in pins(FILES[which]).items():
        assert importlib.metadata.version(name) == version, f"{which}: {name}"


@pytest.mark.parametrize("which", sorted(FILES))
def test_the_whole_tree_is_pinned(which: str) -> None:
    pinned = pins(FILES[which])
    for name in pinned:
        missing = dependencies(name) - set(pinned)
        assert not missing, f"{which}: {name} needs {sorted(missing)}, which are not pinned"
