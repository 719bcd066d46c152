"""The package's shape: no import cycle between its modules, a thin command line, small
modules and functions."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "kitchen_gitops"


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every module of the package that ``path`` imports, at any depth of its code
    (lazy imports inside functions count: they close a cycle all the same)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("kitchen_gitops"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if not target.startswith("kitchen_gitops"):
                continue
            for a in node.names:  # `from . import pipeline` imports a module
                candidate = f"{target}.{a.name}"
                out.add(candidate if _exists(candidate) else target)
    return {m for m in out if _exists(m) and m != name}


def _exists(module: str) -> bool:
    rel = Path(*module.split("."))
    return (PACKAGE.parent / rel).with_suffix(".py").is_file() or (PACKAGE.parent / rel / "__init__.py").is_file()


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            # importing a submodule runs its package's __init__ first: not a cycle by itself
            if node.startswith(nxt + "."):
                continue
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if state.get(nxt) is None and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if state.get(node) is None and (found := visit(node)):
            return found
    return None


def test_no_import_cycle_inside_the_package() -> None:
    cycle = _cycle(_graph())
    assert cycle is None, "import cycle: " + " → ".join(cycle or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_cli_modules_hold_option_parsing_only() -> None:
    """cli*.py declare options and hand a parsed value to kitchen_gitops.commands: no loops,
    no file or network access, no stage called directly (plan's table is formatting)."""
    stages = {"kitchen_gitops.load", "kitchen_gitops.model", "kitchen_gitops.render", "kitchen_gitops.write",
              "kitchen_gitops.policy", "kitchen_gitops.artifacts", "kitchen_gitops.conform.serving.run_serving",
              "kitchen_gitops.diff"}
    for path in sorted(PACKAGE.glob("cli*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                assert node.func.attr not in {"read_text", "write_text", "read_bytes", "open", "mkdir"}, \
                    f"{path.name}:{node.lineno}: file access belongs in the commands"
            if isinstance(node, ast.While):
                raise AssertionError(f"{path.name}:{node.lineno}: logic belongs in the commands")
        bodies = [f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)]
        for fn in bodies:
            statements = [s for s in fn.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
            # the shared option machinery, the plan table's formatting and main's error mapping
            helper = path.name == "cli_options.py" or fn.name.startswith("_") or fn.name == "main"
            limit = 12 if helper else 6
            assert len(statements) <= limit, f"{path.name}: {fn.name} does more than parse options"
        imported = _imports(path)
        assert not imported & stages, f"{path.name} calls stages directly: {sorted(imported & stages)}"


def test_modules_and_functions_stay_small() -> None:
    """No module over 800 lines, no function over 60: a stage that grows past them is
    split along its seams."""
    too_long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > 800:
            too_long.append(f"{path.relative_to(PACKAGE.parent)}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno is not None:
                lines = node.end_lineno - node.lineno + 1
                if lines > 60:
                    too_long.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {node.name} has {lines} lines")
    assert not too_long, "\n".join(too_long)
