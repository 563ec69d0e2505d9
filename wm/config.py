"""One typed schema for params.yaml: every knob of the pipeline, validated up front."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EnvConfig(_Section):
    """The CarRacing environment and its preprocessing."""

    id: Literal["CarRacing-v3"] = "CarRacing-v3"
    fast_render: bool = True  # culls off-screen polygons; frames stay bit-identical
    crop_rows: int = Field(84, ge=8, le=96)  # keep rows [0, crop_rows): drops the status bar
    frame_size: Literal[64] = 64


class RunnerConfig(_Section):
    """Where Prefect runs the parallel tasks (rollouts, candidate evaluations)."""

    kind: Literal["process", "thread", "ray"] = "process"
    workers: int = Field(2, ge=1, le=512)
    ray_address: str | None = None  # only for kind=ray; None starts a local Ray


class CollectConfig(_Section):
    """Random-policy rollouts in the real environment."""

    rollouts: int = Field(64, ge=1)
    max_steps: int = Field(500, ge=2, le=1000)
    policy: Literal["brownian", "random_weights"] = "brownian"
    brownian_dt: float = Field(0.02, gt=0, le=1)
    gas_bias: float = Field(0.3, ge=0, le=1)  # brownian gas starts here so the car moves off the grid


class VaeConfig(_Section):
    """The convolutional VAE (V)."""

    z_dim: int = Field(32, ge=2, le=512)
    epochs: int = Field(3, ge=1)
    batch_size: int = Field(128, ge=2)
    lr: float = Field(1e-3, gt=0)
    kl_tolerance: float = Field(0.5, ge=0)  # KL floored at kl_tolerance * z_dim
    max_frames: int | None = Field(None, ge=16)  # subsample the dataset; None uses every frame
    holdout: float = Field(0.05, ge=0, lt=1)
    bf16: bool = False  # bf16 autocast: faster only on CPUs with avx512_bf16 or AMX


class MdrnnConfig(_Section):
    """The MDN-RNN (M) with reward and done heads."""

    hidden: int = Field(256, ge=4)
    gaussians: int = Field(5, ge=1)
    seq_len: int = Field(32, ge=2)
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(1e-3, gt=0)
    holdout: float = Field(0.1, ge=0, lt=1)


class ControllerConfig(_Section):
    """The controller (C) and its CMA-ES training."""

    mode: Literal["real", "dream"] = "real"  # where CMA-ES scores candidates: the real env or M's dream
    temperature: float = Field(1.0, gt=0, le=5)  # tau of the dream (mixture logits / tau, noise * sqrt(tau))
    arch: Literal["linear", "hidden", "v_only"] = "linear"
    hidden_units: int = Field(40, ge=1)
    population: int = Field(16, ge=2)
    trials: int = Field(1, ge=1)
    generations: int = Field(20, ge=1)
    sigma0: float = Field(0.1, gt=0)
    max_steps: int = Field(500, ge=2, le=1000)
    patience: int | None = Field(100, ge=1)  # end a training episode after this many steps with no reward gain
    eval_every: int = Field(5, ge=1)  # score the CMA mean every k generations
    eval_episodes: int = Field(2, ge=1)


class EvaluateConfig(_Section):
    """Final scoring in the real environment on seeds never used in training."""

    episodes: int = Field(20, ge=1)
    max_steps: int = Field(1000, ge=2, le=1000)


class ScheduleConfig(_Section):
    """When the served `rebuild` deployment runs `dvc repro` (flows/rebuild.py); no stage depends on it."""

    cron: str = "0 3 * * *"
    timezone: str = "UTC"  # IANA name, e.g. Europe/Berlin
    deployment: str = Field("nightly", min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")

    @field_validator("cron")
    @classmethod
    def _five_fields(cls, value: str) -> str:
        # a plain shape check; Prefect validates the expression again when the deployment is served
        if not re.fullmatch(r"(\S+\s+){4}\S+", value.strip()) or not re.fullmatch(r"[\d*/,\-\sA-Za-z?LW#]+", value):
            raise ValueError(f"{value!r} is not a 5-field cron expression such as '0 3 * * *'")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone such as 'UTC' or 'Europe/Berlin'") from None
        return value


class Params(_Section):
    """Everything in params.yaml."""

    seed: int = Field(0, ge=0, lt=2**31)
    env: EnvConfig = EnvConfig()
    runner: RunnerConfig = RunnerConfig()
    collect: CollectConfig = CollectConfig()
    vae: VaeConfig = VaeConfig()
    mdrnn: MdrnnConfig = MdrnnConfig()
    controller: ControllerConfig = ControllerConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    schedule: ScheduleConfig = ScheduleConfig()

    @model_validator(mode="after")
    def _check_consistency(self) -> "Params":
        if self.mdrnn.seq_len >= self.collect.max_steps:
            raise ValueError("mdrnn.seq_len must be smaller than collect.max_steps")
        return self


class ParamsError(ValueError):
    """A params file that does not match the schema; the message names the bad key."""


def _format(err: ValidationError, source: str) -> str:
    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "<root>"
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    msg = msg.removeprefix("Value error, ")
    more = len(err.errors()) - 1
    tail = f" (and {more} more)" if more else ""
    return f"{source}: {key}: {msg}{tail}"


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate a params file; raise ParamsError naming the first bad key."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ParamsError(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: top level must be a mapping")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise ParamsError(_format(exc, str(path))) from None
