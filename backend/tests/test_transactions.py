"""One transaction rule (docs/design.md, "Transactions"): the service layer owns the unit of work; `crud`
never commits or rolls back on its own, except to recover from the error it reports (a duplicate)."""

from __future__ import annotations

import ast
from pathlib import Path

CRUD = Path(__file__).resolve().parents[1] / "app" / "crud"


def _transaction_calls(path: Path) -> list[str]:
    """`<anything>.commit()` calls in a module, as `file:line function`."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(function):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in {"commit", "begin"}
            ):
                found.append(f"{path.name}:{node.lineno} {function.name}() calls .{node.func.attr}()")
    return found


def test_crud_never_commits() -> None:
    modules = sorted(CRUD.glob("*.py"))
    assert len(modules) >= 2
    offenders = [call for module in modules for call in _transaction_calls(module)]
    assert offenders == [], "crud must leave the commit to its caller (the service):\n" + "\n".join(offenders)


def test_the_check_sees_a_commit(tmp_path: Path) -> None:
    module = tmp_path / "example.py"
    module.write_text("async def create(session):\n    session.add(1)\n    await session.commit()\n")
    assert _transaction_calls(module) == ["example.py:3 create() calls .commit()"]
