"""MLflow model registry for the stage flows: one version per new model, with lineage, and honest promotion.

Registered models (names in ops/names.py): `wm-vae`, `wm-mdrnn`, `wm-controller` (the safetensors file as a
plain artifact; load it with `mlflow.artifacts.download_artifacts("models:/wm-vae/3")` and `wm.vae.load_vae`) and
`wm-agent` (a
models-from-code pyfunc bundling the three, see ops/agent_model.py). Nothing is pickled. Every registered model
and every version has a description: what it is, what it was trained on, and its key metric.

Every version carries these tags:
  content_md5          what makes a version unique (weights: the file's md5; wm-agent: the md5 of its three weight
                       md5s, its model config and its inference code): a stage that reproduces an existing
                       version registers nothing, and the run gets the tag registry.<name> = that version
  git_commit, prefect_flow_run_id, dvc.stage
  dvc.deps, dvc.outs   JSON {path: md5} for the stage's deps and outs (outs, metrics, plots) in dvc.yaml.
                       dvc.lock is written only after the stage command returns, so the hashes are computed
                       here the way DVC computes them (file: md5 of the bytes; directory: md5 of the sorted
                       [{"md5", "relpath"}] listing plus ".dir"); they equal the entries DVC then writes.
  dvc.params           JSON {key: value} of the stage's params keys, with the validated (effective) values
wm-agent also has bundles.<name> (the wm-vae/wm-mdrnn/wm-controller versions inside it), eval.* (its own mean and
the champion's mean at decision time) and promoted. It becomes `@champion` only if eval.mean >= the champion's.
"""
from __future__ import annotations

import hashlib
import json
import re
import time
from importlib.metadata import PackageNotFoundError, version as pkg_version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ops.names import AGENT, CHAMPION, DESCRIPTIONS, agent_name
from ops.tracking import git_commit

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

CONTENT = "content_md5"
AGENT_CODE = Path(__file__).with_name("agent_model.py")
# the wm modules on the pyfunc's inference path: part of what makes a wm-agent version unique
INFERENCE_CODE = ["agent.py", "actions.py", "envs/carracing.py", "envs/doom.py", "vae.py", "mdrnn.py", "controller.py",
                  "io.py", "config.py"]
_VAR = re.compile(r"\$\{([^}]+)\}")
# what the pyfunc imports at load time (wm itself is bundled as code)
AGENT_REQUIREMENTS = ["torch", "numpy", "pillow", "safetensors", "gymnasium", "pydantic", "pyyaml"]


def file_md5(path: str | Path) -> str:
    """md5 hex digest of a file's bytes."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _ignored(path: Path) -> bool:
    """Files .dvcignore leaves out of a folder's hash: Python bytecode."""
    return "__pycache__" in path.parts or path.suffix == ".pyc"


def dvc_md5(path: str | Path) -> str:
    """The md5 DVC records in dvc.lock for a file or directory ('missing' if absent)."""
    p = Path(path)
    if p.is_file():
        return file_md5(p)
    if not p.is_dir():
        return "missing"
    # bytecode is in .dvcignore: DVC never sees it, so neither does this hash
    listing = sorted(({"md5": file_md5(f), "relpath": f.relative_to(p).as_posix()}
                      for f in p.rglob("*") if f.is_file() and not _ignored(f)), key=lambda e: e["relpath"])
    return hashlib.md5(json.dumps(listing, sort_keys=True).encode()).hexdigest() + ".dir"


def _read_yaml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    return (yaml.safe_load(p.read_text()) or {}) if p.exists() else {}


def _lookup(tree: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        tree = tree.get(part) if isinstance(tree, dict) else None
    return tree


def _paths(entries: list[Any]) -> list[str]:
    return [next(iter(e)) if isinstance(e, dict) else str(e) for e in entries]


def _json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def _resolve(entry: str, scope: dict[str, Any]) -> str:
    """Interpolate `${name}` as DVC does, from dvc.yaml's vars and the params."""
    return _VAR.sub(lambda m: str(_lookup(scope, m.group(1).strip())), entry)


def stage_lineage(stage: str, params: dict[str, Any], dvc_yaml: str = "dvc.yaml") -> dict[str, str]:
    """Lineage tags for `stage`: git commit, Prefect flow run, the md5 of its deps and outs, and its params.

    `params` is the validated params dump, so dvc.params records the values the stage used.
    """
    spec = _read_yaml(dvc_yaml)
    scope: dict[str, Any] = dict(params)
    for block in spec.get("vars", []):
        if isinstance(block, dict):
            scope.update(block)
    name, _, key = stage.partition("@")  # a foreach stage: `name@key` runs `do` with key and item in scope
    stage_spec = spec.get("stages", {}).get(name, {})
    if key and "do" in stage_spec:
        items = _lookup(scope, str(stage_spec.get("foreach", "")).strip("${} ")) or {}
        scope.update({"key": key, "item": items.get(key) if isinstance(items, dict) else key})
        stage_spec = stage_spec["do"]
    keys = [_resolve(k, scope) for k in stage_spec.get("params", []) if isinstance(k, str)]
    deps = [_resolve(p, scope) for p in _paths(stage_spec.get("deps", []))]
    outs = [_resolve(p, scope) for p in _paths(stage_spec.get("outs", []) + stage_spec.get("metrics", [])
                                               + stage_spec.get("plots", []))]
    try:
        from prefect.runtime import flow_run

        flow_run_id = str(flow_run.id or "none")
    except Exception:  # lineage must not fail a stage run outside a flow
        flow_run_id = "none"
    return {"git_commit": git_commit(), "prefect_flow_run_id": flow_run_id, "dvc.stage": stage,
            "dvc.deps": _json({p: dvc_md5(p) for p in deps}),
            "dvc.outs": _json({p: dvc_md5(p) for p in outs}),
            "dvc.params": _json({k: _lookup(params, k) for k in keys})}


def find_version(name: str, content_md5: str) -> ModelVersion | None:
    """The existing version of `name` whose content_md5 tag is `content_md5`, if any."""
    from mlflow import MlflowClient

    found = MlflowClient().search_model_versions(f"name = '{name}' and tags.{CONTENT} = '{content_md5}'")
    return min(found, key=lambda v: int(v.version)) if found else None


def _ensure_registered(name: str) -> None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    try:
        model = client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, description=DESCRIPTIONS.get(name, ""))
        return
    if not model.description and DESCRIPTIONS.get(name):
        client.update_registered_model(name, description=DESCRIPTIONS[name])


def _finish(name: str, version: str | int, new: bool, t0: float) -> str:
    import mlflow

    seconds = time.perf_counter() - t0
    version = str(version)
    mlflow.set_tag(f"registry.{name}", version)
    mlflow.log_metric(f"registry_seconds.{name}", seconds)
    print(f"registry: {name} version {version} {'registered' if new else 'unchanged, nothing registered'}"
          f" ({seconds:.2f} s)")
    return version


def register_weights(name: str, path: str, stage: str, params: dict[str, Any], description: str) -> str:
    """Log a safetensors file in the active run and register it as a new version of `name` unless already there.

    `description` says what this version was trained on and its key metric; it shows in the registry.
    """
    import mlflow
    from mlflow import MlflowClient

    t0 = time.perf_counter()
    digest = file_md5(path)
    existing = find_version(name, digest)
    if existing is not None:
        return _finish(name, existing.version, False, t0)
    mlflow.log_artifact(path, artifact_path=name)
    run = mlflow.active_run()
    _ensure_registered(name)
    mv = MlflowClient().create_model_version(
        name, source=f"{run.info.artifact_uri}/{name}", run_id=run.info.run_id,
        tags={CONTENT: digest, **stage_lineage(stage, params)}, description=description)
    return _finish(name, mv.version, True, t0)


def champion(name: str = AGENT) -> ModelVersion | None:
    """The version holding the `champion` alias, or None."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        return MlflowClient().get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None


def _requirements() -> list[str]:
    out = []
    for pkg in AGENT_REQUIREMENTS:
        try:
            out.append(f"{pkg}=={pkg_version(pkg).split('+')[0]}")  # drop local labels such as +cpu
        except PackageNotFoundError:
            out.append(pkg)
    return out


def register_agent(weights: dict[str, str], model_config: dict[str, Any], metrics: dict[str, Any],
                   params: dict[str, Any], stage: str = "evaluate", pure_dream: bool = False) -> str:
    """Log and register the V+M+C pyfunc if new, then make it `champion` if its mean score is >= the champion's.

    `pure_dream` (the iterative procedure): the newest iteration becomes champion whatever it scores, so no
    real-env return ever picks the agent. `model_config["env"]` picks the registered model (ops.names.AGENTS).
    """
    import mlflow
    import wm
    from mlflow import MlflowClient

    from ops.agent_model import input_example, signature

    t0 = time.perf_counter()
    name = agent_name(model_config["env"])
    parts = {key: file_md5(path) for key, path in weights.items()}
    wm_dir = Path(wm.__file__).parent
    code = {AGENT_CODE.name: file_md5(AGENT_CODE), **{f: file_md5(wm_dir / f) for f in INFERENCE_CODE}}
    digest = hashlib.md5(_json({"weights": parts, "config": model_config, "code": code}).encode()).hexdigest()
    existing = find_version(name, digest)
    if existing is not None:
        return _finish(name, existing.version, False, t0)

    bundles = {}
    for key, md5 in parts.items():
        mv = find_version(f"wm-{key}", md5)
        bundles[f"bundles.wm-{key}"] = str(mv.version) if mv is not None else "unregistered"
    mean = float(metrics["mean"])
    champ = champion(name)
    champ_mean = float(champ.tags["eval.mean"]) if champ is not None and "eval.mean" in champ.tags else None
    promote = pure_dream or champ_mean is None or mean >= champ_mean
    tags = {CONTENT: digest, **stage_lineage(stage, params), **bundles,
            "eval.mean": repr(mean), "eval.std": repr(float(metrics.get("std", 0.0))),
            "eval.seeds": _json(metrics.get("seeds", [])),
            "eval.champion_version": str(champ.version) if champ is not None else "none",
            "eval.champion_mean": repr(champ_mean) if champ_mean is not None else "none",
            "promoted": str(promote).lower(),
            "promotion_rule": "newest dream-trained iteration" if pure_dream else "eval.mean >= champion's"}

    info = mlflow.pyfunc.log_model(
        name=name, python_model=str(AGENT_CODE), model_config=model_config, code_paths=[str(wm_dir)],
        artifacts={key: str(Path(path).resolve()) for key, path in weights.items()},
        signature=signature(model_config), input_example=input_example(model_config), pip_requirements=_requirements())
    _ensure_registered(name)
    parts_text = ", ".join(f"{k} v{v}" for k, v in bundles.items()).replace("bundles.", "")
    description = (f"V + M + C ({parts_text}). Mean return {mean:.1f} +- {float(metrics.get('std', 0.0)):.1f} over "
                   f"{metrics.get('episodes', '?')} real {model_config['env']} episodes on the fixed evaluation seeds; "
                   f"{'promoted to @champion' if promote else 'not promoted'}.")
    mv = MlflowClient().create_model_version(name, source=info.model_uri, run_id=mlflow.active_run().info.run_id,
                                             tags=tags, model_id=info.model_id, description=description)
    if promote:
        MlflowClient().set_registered_model_alias(name, CHAMPION, mv.version)
    verdict = "promoted to @champion" if promote else f"kept @champion at version {champ.version}"
    print(f"registry: {name} version {mv.version} scored {mean:.1f} vs champion "
          f"{'none' if champ_mean is None else f'{champ_mean:.1f}'}: {verdict}")
    return _finish(name, mv.version, True, t0)
