"""The runtime package stands alone: no module of vlprep (nor a rule's adapter) imports the
stand-in world, and vlprep's modules import each other without a cycle."""

import ast
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
RUNTIME = sorted((SCRIPTS / "vlprep").rglob("*.py")) + sorted(SCRIPTS.glob("*.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(SCRIPTS).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, *, top_level_only: bool) -> set[str]:
    """Modules `path` imports (`from a.b import c` gives a.b and a.b.c)."""
    tree = ast.parse(path.read_text(), str(path))
    nodes = tree.body if top_level_only else ast.walk(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def test_no_runtime_module_imports_the_stand_ins():
    offenders = {
        module_name(path): sorted(
            m for m in imports(path, top_level_only=False) if m.split(".")[0] == "standin"
        )
        for path in RUNTIME
    }
    assert {k: v for k, v in offenders.items() if v} == {}
    assert len(RUNTIME) > 30  # the scan saw the package


def test_vlprep_imports_no_cycle():
    """Import time: a cycle among module-level imports is a partly initialised module."""
    modules = {module_name(p): p for p in (SCRIPTS / "vlprep").rglob("*.py")}
    graph = {
        name: {m for m in imports(path, top_level_only=True) if m in modules and m != name}
        for name, path in modules.items()
    }
    done: set[str] = set()

    def visit(name: str, stack: list[str]) -> None:
        if name in stack:
            raise AssertionError(
                "import cycle: " + " -> ".join([*stack[stack.index(name) :], name])
            )
        if name in done:
            return
        for dep in sorted(graph[name]):
            visit(dep, [*stack, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])
