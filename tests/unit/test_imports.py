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


# The modules that download catalog files, and the transfer base they share.
DOWNLOADERS = (
    "vlprep.transfer",
    "vlprep.fetch",
    "vlprep.s3",
    "vlprep.gdrive",
    "vlprep.hub",
    "vlprep.sources",
)


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def dotted(node: ast.expr) -> str | None:
    """`a.b.c` for a Name or a chain of Attributes on one; None for anything else."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def private_names_used(source: str, module: str) -> list[str]:
    """The `_`-prefixed names `module` takes from another vlprep module: imported
    (`from vlprep.x import _y`) or reached through an imported module (`x._y`)."""
    tree = ast.parse(source)
    modules: dict[str, str] = {}  # a local name -> the vlprep module it is bound to
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] != "vlprep" or node.module == module:
                continue
            for alias in node.names:
                if is_private(alias.name):
                    found.append(f"{node.module}.{alias.name}")
                elif node.module == "vlprep":  # `from vlprep import fetch`
                    modules[alias.asname or alias.name] = f"vlprep.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "vlprep":
                    modules[alias.asname or alias.name] = alias.name
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and is_private(node.attr):
            base = dotted(node.value)
            target = modules.get(base or "") or (base if base in modules.values() else None)
            if target and target != module:
                found.append(f"{target}.{node.attr}")
    return found


def test_the_private_name_check_sees_every_spelling():
    source = (
        "import vlprep.space\n"
        "from vlprep import s3\n"
        "from vlprep import sniff as sn\n"
        "from vlprep.fetch import _Retry, fetch\n"
        "from vlprep.gdrive import _Hasher as Hasher\n"
        "from vlprep.transfer import _hash_worker\n"
        "x = (s3._S3Download, sn._first, vlprep.space._x, s3.fetch_s3, vlprep.__version__)\n"
    )
    assert sorted(private_names_used(source, "vlprep.transfer")) == [
        "vlprep.fetch._Retry",
        "vlprep.gdrive._Hasher",
        "vlprep.s3._S3Download",
        "vlprep.sniff._first",
        "vlprep.space._x",
    ]


def test_downloaders_use_no_private_name_of_another_module():
    """HTTP, S3 and Drive share vlprep.transfer's public base; none reaches into another
    module's private names (as gdrive and s3 once did into vlprep.fetch's)."""
    modules = {module_name(path): path for path in (SCRIPTS / "vlprep").rglob("*.py")}
    assert set(DOWNLOADERS) <= set(modules)  # a renamed module must not drop out unseen
    offenders = {name: private_names_used(modules[name].read_text(), name) for name in DOWNLOADERS}
    assert {name: used for name, used in offenders.items() if used} == {}
