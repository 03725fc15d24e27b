"""The image key layout has one definition (yoctogram_common.keys): the backend, the compressor, the local
stack, the infrastructure and the load tests all use it, and none spells a key of its own."""

from __future__ import annotations

import ast
import uuid
from pathlib import Path

import pytest

from yoctogram_common import keys
from yoctogram_common.keys import ImageKey, parse_key

ROOT = Path(__file__).resolve().parents[2]
IMAGE_ID = str(uuid.UUID(int=7))
# Where code runs that handles image keys (tests excluded: they may spell keys to check this module).
CODE = ["backend/app", "compressor", "devstack", "stages", "pipeline", "loadtests", "bench"]
FOLDER_WORDS = tuple(f"{folder}/" for folder in (keys.ORIGINALS, keys.RENDITIONS, keys.QUARANTINE))


@pytest.mark.parametrize("privacy", keys.PRIVACIES)
def test_every_key_of_an_image_parses_back_to_what_it_is(privacy: str) -> None:
    made = {
        keys.original_key(privacy, IMAGE_ID): ("original", None),
        keys.rendition_key(privacy, IMAGE_ID): ("rendition", "webp"),
        keys.rendition_key(privacy, IMAGE_ID, "jpg"): ("rendition", "jpg"),
        keys.rejected_key(privacy, IMAGE_ID): ("rejected", None),
    }
    for key, (kind, extension) in made.items():
        parsed = parse_key(key)
        assert parsed == ImageKey(privacy, IMAGE_ID, kind, extension)  # type: ignore[arg-type]
        assert parsed.key == key
    assert keys.original_key(privacy, IMAGE_ID) == f"{privacy}/originals/{IMAGE_ID}"
    assert keys.rendition_key(privacy, IMAGE_ID) == f"{privacy}/renditions/{IMAGE_ID}.webp"
    assert keys.quarantine_key(privacy, IMAGE_ID) == f"{privacy}/quarantine/{IMAGE_ID}"
    assert set(keys.every_key(privacy, IMAGE_ID)) == {*made, keys.quarantine_key(privacy, IMAGE_ID)}


@pytest.mark.parametrize(
    "key",
    [
        f"public/quarantine/{IMAGE_ID}",  # never served, never an event
        f"shared/originals/{IMAGE_ID}",
        f"originals/{IMAGE_ID}",
        "public/originals/",
        "public/originals/a/b",
        "public/originals/../private/originals/x",
        "public/originals/holiday photo.jpg",
        f"public/renditions/{IMAGE_ID}.png",
        f"public/renditions/{IMAGE_ID}",
        f"public/originals/{'x' * 129}",
    ],
)
def test_anything_else_is_not_a_key_of_the_layout(key: str) -> None:
    assert parse_key(key) is None


def test_the_served_prefixes_are_the_folders_of_both_privacies() -> None:
    prefixes = {keys.folder_prefix(p, f) for p in keys.PRIVACIES for f in keys.SERVED_FOLDERS}
    assert prefixes == {
        "public/originals/",
        "public/renditions/",
        "private/originals/",
        "private/renditions/",
    }


def _spelled_keys(path: Path) -> list[str]:
    """String literals in code (not docstrings, not human descriptions) that spell a folder of the layout."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    prose: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            prose.add(id(node.value))  # docstrings and bare strings
        if isinstance(node, ast.keyword) and node.arg in {"description", "help", "summary"}:
            prose.update(id(n) for n in ast.walk(node.value))
    return [
        f"{path.relative_to(ROOT)}:{node.lineno} {node.value[:60]!r}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in prose
        and any(word in node.value for word in FOLDER_WORDS)
    ]


def test_no_code_spells_a_key_of_its_own() -> None:
    files = [
        path
        for folder in CODE
        for path in sorted((ROOT / folder).rglob("*.py"))
        if not {"tests", "yoctogram_common", "node_modules", "cdk.out"} & set(path.relative_to(ROOT).parts)
    ]
    assert len(files) > 50
    spelled = [found for path in files for found in _spelled_keys(path)]
    assert spelled == [], "use yoctogram_common.keys instead:\n" + "\n".join(spelled)


def test_the_check_sees_a_spelled_key(tmp_path: Path) -> None:
    module = ROOT / "yoctogram_common" / "tests" / "_spelled_example.py"
    module.write_text('"""Doc: public/originals/x."""\nKEY = f"{privacy}/renditions/{image_id}.webp"\n')
    try:
        assert [line.split(" ", 1)[1] for line in _spelled_keys(module)] == ["'/renditions/'"]
    finally:
        module.unlink()
