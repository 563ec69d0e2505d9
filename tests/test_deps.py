"""Each stage's deps cover exactly the repo code its command imports, so touching a file reruns exactly the stages
that import it: checked from the code (import closure) and with a real `dvc status` on the smoke project."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from conftest import REPO
from imports import closure, is_wiring
from smoke_story import smoke_story

SPEC = yaml.safe_load((REPO / "dvc.yaml").read_text())
STAGES = {name: spec.get("do", spec) for name, spec in SPEC["stages"].items()}  # a foreach group: its `do` stage
ITERATION0 = sorted(name for name, spec in SPEC["stages"].items() if "foreach" not in spec)
CODE = ("wm/", "flows/", "ops/")


def entry_module(cmd: str) -> str:
    """`python -m flows <stage> ...` -> flows.<stage>."""
    match = re.match(r"python -m flows (\w+)\b", cmd.strip())
    assert match, f"stage command does not run a flow: {cmd!r}"
    return f"flows.{match.group(1)}"


def covered(root: Path, deps: list[str]) -> set[str]:
    """Repo code files covered by a stage's deps (a file, or every .py file under a folder)."""
    files: set[str] = set()
    for dep in deps:
        if not dep.startswith(CODE):
            continue
        path = root / dep
        if path.is_dir():
            files |= {p.relative_to(root).as_posix() for p in path.rglob("*.py") if "__pycache__" not in p.parts}
        else:
            assert path.is_file(), f"dep {dep} does not exist"
            files.add(dep)
    return files


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_code_deps_are_exactly_the_import_closure(stage: str) -> None:
    spec = STAGES[stage]
    imported = closure(REPO, entry_module(spec["cmd"]))
    deps = covered(REPO, spec["deps"])
    assert not imported - deps, f"{stage}: imported but not in deps: {sorted(imported - deps)}"
    assert not deps - imported, f"{stage}: in deps but never imported: {sorted(deps - imported)}"


def test_wiring_is_only_orchestration_and_platform_code() -> None:
    # the exemptions are code that cannot change an output; the science never hides there
    for path in (REPO / "wm").rglob("*.py"):
        assert not is_wiring(path.relative_to(REPO).as_posix())
    assert not any(is_wiring(f"flows/{s}.py") for s in STAGES)


def test_wm_has_no_orchestration_imports() -> None:
    for path in (REPO / "wm").rglob("*.py"):
        text = path.read_text()
        for name in ("prefect", "mlflow", "dvc", "flows", "ops"):
            assert not re.search(rf"^\s*(import|from) {name}\b", text, re.M), f"{path} imports {name}"


def _dvc_status(project: Path) -> dict:
    """What `dvc status --json` prints, from DVC's own Repo.status in this process (a CLI start costs 1-2 s)."""
    from contextlib import chdir

    from dvc.repo import Repo

    with chdir(project), Repo(".") as repo:  # from the repo root its stages are named as the CLI names them
        return repo.status()


def _touches(changes: list, rel: str) -> bool:
    """Whether a stage's `dvc status` entry reports `rel` (or a folder holding it) as a changed dep."""
    changed = [p for c in changes if isinstance(c, dict) for p in c.get("changed deps", {})]
    return any(rel == p or rel.startswith(p.rstrip("/") + "/") for p in changed)


@pytest.mark.e2e
def test_touching_a_wm_file_marks_exactly_the_stages_that_import_it(project: Path, prefect_server: str) -> None:
    root = smoke_story(project, prefect_server).project  # it ends with `iterations: {}`: iteration 0 only
    assert _dvc_status(root) == {}
    # every file touched at once, one `dvc status`: DVC names each changed dep of each stage, so a file's stale
    # stages are the stages that list it (one status per file said the same and cost 32 status calls)
    originals = {path: path.read_bytes() for path in sorted((root / "wm").rglob("*.py"))}
    try:
        for path, original in originals.items():
            path.write_bytes(original + b"\n# touched\n")
        status = _dvc_status(root)
    finally:
        for path, original in originals.items():
            path.write_bytes(original)
    closures = {s: closure(root, entry_module(STAGES[s]["cmd"])) for s in ITERATION0}
    for path in originals:
        rel = path.relative_to(root).as_posix()
        expected = sorted(s for s in ITERATION0 if rel in closures[s])
        stale = sorted(name for name, changes in status.items() if _touches(changes, rel))
        assert stale == expected, rel
    assert _dvc_status(root) == {}


def test_lineage_hash_of_a_folder_ignores_bytecode_as_dvc_does(tmp_path: Path) -> None:
    from ops.registry import dvc_md5

    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    clean = dvc_md5(tmp_path / "pkg")
    (tmp_path / "pkg" / "__pycache__").mkdir()
    (tmp_path / "pkg" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\x00bytecode")
    assert dvc_md5(tmp_path / "pkg") == clean
    assert "__pycache__/" in (REPO / ".dvcignore").read_text()
