"""lab_plumbing serves every step the same: it names none, and keeps no state of its own at
module level (four steps load in one test process; each app's state lives in its own objects)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from daprlab.paths import REPO_ROOT, steps

PLUMBING = sorted((REPO_ROOT / "lab_plumbing").glob("*.py"))
# What only one step's feature is about: its settings, its actor types.
FEATURE_IDENTIFIERS = re.compile(r"TIMER_|REMINDER|FollowUp|Quick|REENTRANCY")
# Calls whose result cannot change: a logger by name, a type variable, text built once, the
# serializer (it holds nothing), a route parameter's declaration (in an Annotated type).
IMMUTABLE_CALLS = {"logging.getLogger", "TypeVar", "str.join", "ExactJSONSerializer", "Header"}


def call_name(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Constant):
        return f"{type(func.value.value).__name__}.{func.attr}"  # "".join(...)
    return ast.unparse(func)


def immutable(node: ast.expr) -> bool:
    """True for a value that no one can change: constants, text, tuples, names of classes."""
    if isinstance(node, ast.Constant | ast.Name | ast.Attribute):
        return True
    if isinstance(node, ast.JoinedStr):
        return all(immutable(v) for v in node.values)
    if isinstance(node, ast.FormattedValue):
        return immutable(node.value)
    if isinstance(node, ast.Tuple):
        return all(immutable(e) for e in node.elts)
    if isinstance(node, ast.Subscript):  # a type: Annotated[str | None, Header(...)]
        return immutable(node.value) and immutable(node.slice)
    if isinstance(node, ast.BinOp):
        return immutable(node.left) and immutable(node.right)
    if isinstance(node, ast.Call):
        return call_name(node) in IMMUTABLE_CALLS
    return False


def assignments(body: list[ast.stmt]) -> list[tuple[int, ast.expr | None]]:
    """(line, value) of each assignment directly in `body` (a module's or a class's)."""
    found: list[tuple[int, ast.expr | None]] = []
    for stmt in body:
        if isinstance(stmt, ast.AnnAssign) and stmt.value is None:
            continue  # a declared field (a dataclass's): it holds nothing
        if isinstance(stmt, ast.Assign | ast.AnnAssign | ast.AugAssign):
            found.append((stmt.lineno, stmt.value))
        elif isinstance(stmt, ast.ClassDef):
            found.extend(assignments(stmt.body))
    return found


def test_plumbing_is_found() -> None:
    assert {p.name for p in PLUMBING} >= {"__init__.py", "sidecar.py", "guard.py"}


@pytest.mark.parametrize("path", PLUMBING, ids=lambda p: p.name)
def test_plumbing_knows_no_step(path: Path) -> None:
    text = path.read_text()
    named = [step for step in steps() if step in text]
    assert not named, f"lab_plumbing/{path.name} names {named}"
    found = FEATURE_IDENTIFIERS.findall(text)
    assert not found, f"lab_plumbing/{path.name} knows a step's feature: {found}"
    tree = ast.parse(text)
    mutable = [line for line, value in assignments(tree.body) if not immutable(value)]
    assert not mutable, f"lab_plumbing/{path.name} keeps state at module level, lines {mutable}"
    shared = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Global | ast.Nonlocal)]
    assert not shared, f"lab_plumbing/{path.name} rebinds shared names, lines {shared}"


def test_the_check_catches_module_level_state() -> None:
    tree = ast.parse(
        "registered = {}\nsessions: list = []\nEVENT = asyncio.Event()\nOK = (1, 'a')\n"
        "T = Annotated[str | None, Header(alias='A')]\nKEPT = [{}][0]"
    )
    assert [immutable(value) for _, value in assignments(tree.body)] == [
        False,
        False,
        False,
        True,
        True,
        False,
    ]
