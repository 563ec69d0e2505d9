"""The repo files a stage's command imports, found by reading the code (every import statement, also lazy ones)."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGES = ("wm", "flows", "ops")
# Wiring that cannot change a stage's outputs: the CLI and task runner, and the platform code (MLflow tracking, the
# registry, the pyfunc, the scheduled rebuild). The closure does not descend into them.
WIRING = ("flows/__init__.py", "flows/__main__.py", "flows/runtime.py", "ops/")


def module_file(root: Path, module: str) -> Path | None:
    """The repo file that defines `module`, if it is ours."""
    if module.split(".")[0] not in PACKAGES:
        return None
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(path: Path) -> set[str]:
    """Every module named by an import statement anywhere in the file (`from a import b` yields a and a.b)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def with_parents(module: str) -> list[str]:
    """a.b.c -> [a, a.b, a.b.c]: importing a module runs its packages' __init__ first."""
    parts = module.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def is_wiring(rel: str) -> bool:
    """Whether a repo file is orchestration or platform code (see WIRING)."""
    return any(rel == w or (w.endswith("/") and rel.startswith(w)) for w in WIRING)


def closure(root: Path, entry: str) -> set[str]:
    """Repo-relative paths of the files module `entry` imports, directly or through other repo modules."""
    seen: set[str] = set()
    todo = [entry]
    while todo:
        for name in with_parents(todo.pop()):
            path = module_file(root, name)
            if path is None:
                continue
            rel = path.relative_to(root).as_posix()
            if rel in seen:
                continue
            seen.add(rel)
            if not is_wiring(rel):
                todo.extend(imported_modules(path))
    return {rel for rel in seen if not is_wiring(rel)}
