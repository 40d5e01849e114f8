"""The code stays readable: no function in ablate/ or plugins/ over 60 lines,
and 90% of them 30 lines or fewer (the issue's figures; printed by
`python tests/test_code_shape.py`)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("ablate", "plugins")
LONGEST = 60
SHORT, SHARE = 30, 0.90


def function_lengths() -> dict[str, int]:
    """'path:name' -> lines from the def (decorators excluded) to the last line."""
    out = {}
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    where = f"{path.relative_to(ROOT)}:{node.lineno}:{node.name}"
                    out[where] = (node.end_lineno or node.lineno) - node.lineno + 1
    return out


def test_no_function_is_longer_than_60_lines():
    too_long = {k: n for k, n in function_lengths().items() if n > LONGEST}
    assert not too_long, too_long


def test_nine_in_ten_functions_are_30_lines_or_fewer():
    lengths = list(function_lengths().values())
    share = sum(n <= SHORT for n in lengths) / len(lengths)
    assert share >= SHARE, f"{share:.1%} of {len(lengths)} functions are {SHORT} lines or fewer"


if __name__ == "__main__":
    lengths = function_lengths()
    values = sorted(lengths.values())
    share = sum(n <= SHORT for n in values) / len(values)
    print(f"{len(values)} functions; longest {values[-1]} lines; {share:.1%} are {SHORT} lines or fewer")
    for where, n in sorted(lengths.items(), key=lambda kv: -kv[1])[: int(sys.argv[1]) if len(sys.argv) > 1 else 10]:
        print(f"  {n:3d}  {where}")
