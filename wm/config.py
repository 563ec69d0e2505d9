"""One typed schema for params.yaml: every knob of the pipeline, validated up front.

Every key is required: a profile is a complete file, so each value that reaches an output is in params.yaml,
where DVC sees it. A missing key is an error naming it, just like a bad one.
Types are strict: an integer is an integer (not `true`, `yes` or 2.0), a number is finite (no .nan or .inf),
a flag is `true` or `false`, and nothing is converted from a string.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class CarRacingConfig(_Section):
    """The CarRacing environment and its preprocessing."""

    id: Literal["CarRacing-v3"]
    fast_render: bool  # culls off-screen polygons; frames stay bit-identical
    crop_rows: int = Field(ge=8, le=96)  # keep rows [0, crop_rows): drops the status bar
    frame_size: Literal[64]


class TakeCoverConfig(_Section):
    """VizDoom's Take Cover (vizdoom's gymnasium env) and its preprocessing."""

    id: Literal["VizdoomTakeCover-v1"]
    screen: Literal["160x120", "320x240"]  # the size vizdoom renders at before the resize; the game is the same
    frame_size: Literal[64]


# `env.id` picks the environment, and with it the keys its section has
EnvConfig = Annotated[Union[CarRacingConfig, TakeCoverConfig], Field(discriminator="id")]
ENV_IDS = ("CarRacing-v3", "VizdoomTakeCover-v1")
POLICIES = {"CarRacing-v3": ("brownian", "random_weights", "repeat"), "VizdoomTakeCover-v1": ("repeat",)}
REWARDS = {"CarRacing-v3": ("regress", "tile"), "VizdoomTakeCover-v1": ("regress", "survival")}


class RunnerConfig(_Section):
    """Where Prefect runs the parallel tasks (rollouts, candidate evaluations); changes no output."""

    kind: Literal["process", "thread", "ray"]
    workers: int = Field(ge=1, le=512)
    ray_address: str | None  # only for kind=ray; null starts a local Ray
    # real-env episodes one task plays (CMA-ES in the real env, evaluation): more per task pays the per-task
    # cost (a Prefect task run, a hop to a Ray worker) less often; fewer keeps more workers busy
    episodes_per_task: int = Field(ge=1, le=1024)


class CollectConfig(_Section):
    """Random-policy rollouts in the real environment."""

    rollouts: int = Field(ge=1)
    max_steps: int = Field(ge=2, le=10000)
    # brownian and random_weights: CarRacing's; repeat: a uniform random action held for 1..repeat_max steps (Doom)
    policy: Literal["brownian", "random_weights", "repeat"]
    brownian_dt: float = Field(gt=0, le=1)
    gas_bias: float = Field(ge=0, le=1)  # brownian gas starts here so the car moves off the grid
    repeat_max: int = Field(ge=1)  # policy repeat: hold each random action for 1..repeat_max steps (the paper: 10)

    def knobs(self) -> dict[str, Any]:
        """The knobs that decide a rollout's bytes: the count is not one, nor another policy's knobs."""
        unused = {"brownian": {"repeat_max"}, "random_weights": {"repeat_max", "brownian_dt"},
                  "repeat": {"brownian_dt", "gas_bias"}}[self.policy]
        return self.model_dump(exclude={"rollouts"} | unused)


class VaeConfig(_Section):
    """The convolutional VAE (V)."""

    z_dim: int = Field(ge=2, le=512)
    epochs: int = Field(ge=1)
    batch_size: int = Field(ge=2)
    lr: float = Field(gt=0)
    kl_tolerance: float = Field(ge=0)  # KL floored at kl_tolerance * z_dim
    max_frames: int | None = Field(ge=16)  # subsample the dataset; null uses every frame
    holdout: float = Field(ge=0, lt=1)
    buffer: int = Field(ge=1)  # shuffle buffer in frames (12 KB each): with one rollout file, V's data memory
    workers: int = Field(ge=0, le=64)  # DataLoader processes that read and shuffle frames; 0 reads in the trainer
    bf16: bool  # bf16 autocast: faster only on CPUs with avx512_bf16 or AMX


class MdrnnConfig(_Section):
    """The MDN-RNN (M) with reward and done heads."""

    hidden: int = Field(ge=4)
    gaussians: int = Field(ge=1)
    # joint: one K-component mixture over the whole of z; per_dim: one per dimension of z (the paper's M), so at a
    # temperature every dimension picks its own component and the dream is noisier
    mixture: Literal["joint", "per_dim"]
    seq_len: int = Field(ge=2)
    # the LSTM state a training window of a rollout longer than seq_len starts from: zero (as if the episode began
    # there), or episode (M's state after reading that rollout's earlier steps, run without gradient, so the window
    # sees the episode's true age: a death at step 900 is learned at step 900, not 0-512 steps after a zero state)
    window_state: Literal["zero", "episode"]
    epochs: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    lr: float = Field(gt=0)
    holdout: float = Field(ge=0, lt=1)
    # which rollouts are held out: `last`, the newest ones (in the iterative procedure, the latest agent's, so M
    # trains on few of them); `spread`, every (1/holdout)-th rollout, so each iteration's rollouts train M and are
    # held out alike
    holdout_from: Literal["last", "spread"]
    # stop when the held-out loss has not improved for this many epochs and keep the best epoch's weights (null: run
    # every epoch and keep the last); needs holdout > 0
    patience: int | None = Field(ge=1)
    # regress r_t (MSE); tile: classify "new tile at t" and rebuild CarRacing's reward; survival: the dream pays +1
    # per step alive (Doom), so only the done head matters
    reward: Literal["regress", "tile", "survival"]
    reward_weight: float = Field(ge=1)  # weight of the rare steps with a positive reward in the reward loss
    done_weight: float = Field(ge=1)  # weight of the rare done steps in the done head's logistic loss (Doom: 10)
    dropout: float = Field(ge=0, lt=1)  # dropout on h before the heads while training
    # the last open_loop steps of each training window read M's own sampled z instead of the real one (0: teacher
    # forcing throughout), so M learns what its actions do over many steps, as it must in the dream
    open_loop: int = Field(ge=0)
    # M's forward pass under bf16 autocast while it trains (the loss and the held-out evaluation stay fp32): 1.2-2.0x
    # faster on CPUs with avx512_bf16 or AMX (bench/train_throughput.py); other bits than fp32
    bf16: bool
    # Ms trained on the same rollouts, member k from seed + k, all saved in M's one file: with more than one, the
    # dream is their ensemble (C reads member 0's h; a dream's next z comes from one member; its deaths follow
    # dream.ensemble_done). Member 0 alone plays the real game beside C
    members: int = Field(ge=1, le=16)
    members_bf16: bool  # members 1.. train under bf16 autocast (member 0 follows mdrnn.bf16)
    # M also reads each step's age in its episode, as age / age_scale (null: it does not). Take Cover's hazard rises
    # with age; without it M's dream kills at a nearly flat rate. Dreams then start from first frames (age 0)
    age_scale: float | None = Field(gt=0)


class ControllerConfig(_Section):
    """The controller (C) and its CMA-ES training; the fitness knobs live in the `real` or `dream` section."""

    mode: Literal["real", "dream"]  # where CMA-ES scores candidates: the real env or M's dream
    arch: Literal["linear", "linear_hc", "hidden", "v_only"]  # linear_hc: C reads M's cell state c as well
    hidden_units: int = Field(ge=1)
    population: int = Field(ge=2)
    trials: int = Field(ge=1)
    generations: int = Field(ge=1)
    sigma0: float = Field(gt=0)
    max_steps: int = Field(ge=2, le=10000)
    eval_every: int = Field(ge=1)  # score the CMA mean every k generations
    eval_episodes: int = Field(ge=1)
    # what C reads of a real frame: V's mean, or a draw from V's posterior (the authors' real env; the dream's C
    # only ever reads sampled z); saved with C's weights
    z_input: Literal["mean", "sample"]
    # C picks an action every this many steps and the env, real or dream, plays it until the next pick (M reads
    # every frame); saved with C's weights. 1: every step
    action_repeat: int = Field(ge=1)


class RealConfig(_Section):
    """Fitness in the real env (controller.mode: real)."""

    patience: int | None = Field(ge=1)  # end a training episode after this many steps with no new best return


class DreamConfig(_Section):
    """M's dream: the fitness when controller.mode is dream, and the `dream` stage's diagnostics in both modes."""

    temperature: float = Field(gt=0, le=5)  # tau: mixture logits / tau, noise * sqrt(tau)
    patience: int | None = Field(ge=1)  # as real.patience, on the dream's reward
    dropout: float = Field(ge=0, lt=1)  # one dropout mask on M's h per dream, fixed for the whole episode
    # where dreams start: a real first frame with M's zero state, or any real frame with M's state after reading
    # its rollout up to there (short dreams from where the data is), or such a frame where the real car was about
    # to touch a new tile (on_road: CarRacing only, mostly the exploring agent's own frames)
    start: Literal["first_frame", "burned_in", "on_road"]
    first_frame_share: float = Field(ge=0, lt=1)  # burned_in / on_road: this share of dreams starts at first frames
    # how M's done head ends a dream: when P(done) > 0.5 on its training scale (the paper's rule), or by drawing
    # each step's death from M's calibrated P(done) (wm.mdrnn.MDRNN.done_prob), a hazard rather than a verdict
    done: Literal["threshold", "sample"]
    # an ensemble's death (mdrnn.members > 1): from the members' mean done logit or P(done), or `max`, the most
    # pessimistic member's, so that C must survive every member
    ensemble_done: Literal["mean", "max"]
    # an ensemble's reward (mdrnn.members > 1): the members' mean minus this many of their standard deviations, so
    # a step pays less where the Ms disagree (where the data is thin); 0.0 pays the mean
    disagreement: float = Field(ge=0, le=10)
    # when a dream dies: `model`, as M's done head says; `calibrated`, M's done logit plus an offset per band of
    # `hazard_band` steps of the episode's age, fitted so that the collection policy, replayed in this dream, dies
    # band by band as often as it did in the real rollouts (wm/dream_hazard.py)
    hazard: Literal["model", "calibrated"]
    hazard_band: int = Field(ge=1)
    # the probability that a dream step plays a uniformly random action instead of C's (the same slip for every
    # candidate on a trial): C must survive its own slips, so an exact sequence that only M rewards pays less
    action_noise: float = Field(ge=0, lt=1)
    # an ensemble's z_{t+1} (mdrnn.members > 1): from a member picked anew at every step (`step`), or from one member
    # picked per dream (`dream`), so that each dream plays out in one member's world; deaths still pool every member
    member_pick: Literal["step", "dream"]


class IterateConfig(_Section):
    """The iterative procedure's knobs for iterations k >= 1 (which iterations run is `iterations`)."""

    rollouts: int = Field(ge=1)  # real rollouts per iteration, played by C_{k-1} with exploration noise
    max_steps: int = Field(ge=2, le=10000)
    noise: float = Field(ge=0, le=2)  # std of the noise added to each action component
    noise_corr: float = Field(ge=0, lt=1)  # noise_{t+1} = corr * noise_t + ...: smooth, like the brownian policy
    # iteration k explores with noise * noise_decay ** (k - 1): less as C improves
    noise_decay: float = Field(gt=0, le=1)
    mdrnn_epochs: int = Field(ge=1)  # M fine-tunes from M_{k-1} on every rollout so far
    generations: int = Field(ge=1)  # CMA-ES generations in M_k's dream, warm-started at C_{k-1}
    sigma0: float = Field(gt=0)

    def noise_at(self, iteration: int) -> float:
        """The exploration noise's std at iteration k >= 1."""
        return self.noise * self.noise_decay ** (iteration - 1)


class EvaluateConfig(_Section):
    """Final scoring in the real environment on seeds never used in training."""

    episodes: int = Field(ge=1)
    max_steps: int = Field(ge=2, le=10000)


class ScheduleConfig(_Section):
    """When the served `rebuild` deployment runs `dvc repro` (ops/rebuild.py); no stage depends on it."""

    cron: str
    timezone: str  # IANA name, e.g. Europe/Berlin
    deployment: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")

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

    seed: int = Field(ge=0, lt=2**31)
    device: Literal["auto", "cpu", "cuda"]  # V, M, encoding and the dream (wm/device.py); auto: a GPU if torch sees one
    env: EnvConfig
    runner: RunnerConfig
    collect: CollectConfig
    vae: VaeConfig
    mdrnn: MdrnnConfig
    controller: ControllerConfig
    real: RealConfig
    dream: DreamConfig
    evaluate: EvaluateConfig
    schedule: ScheduleConfig
    iterate: IterateConfig
    # Iterations k >= 1 of the iterative procedure, as DVC's foreach reads them: "k": "k-1" (the one it builds on).
    iterations: dict[str, str]

    @model_validator(mode="after")
    def _check_consistency(self) -> "Params":
        if self.mdrnn.open_loop >= self.mdrnn.seq_len:
            raise ValueError("mdrnn.open_loop must be smaller than mdrnn.seq_len (M reads at least one real z)")
        if self.mdrnn.patience is not None and self.mdrnn.holdout == 0:
            raise ValueError("mdrnn.patience needs held-out rollouts to watch: set mdrnn.holdout > 0 or patience: null")
        if self.mdrnn.seq_len >= self.collect.max_steps:
            raise ValueError("mdrnn.seq_len must be smaller than collect.max_steps")
        if self.iterations and self.mdrnn.seq_len >= self.iterate.max_steps:
            raise ValueError("mdrnn.seq_len must be smaller than iterate.max_steps")
        if self.dream.start == "first_frame" and self.dream.first_frame_share != 0:
            raise ValueError("dream.first_frame_share mixes first frames into burned_in or on_road starts: "
                             "with start: first_frame set it to 0.0")
        if self.dream.start == "on_road" and self.env.id != "CarRacing-v3":
            raise ValueError("dream.start: on_road reads CarRacing's new-tile reward; use burned_in for this env")
        if self.mdrnn.age_scale is not None and self.dream.start != "first_frame":
            raise ValueError("mdrnn.age_scale: a dream's steps are aged from its start, so it starts from first frames "
                             "(age 0): set dream.start: first_frame")
        if self.mdrnn.members > 1 and self.dream.start != "first_frame":
            raise ValueError("mdrnn.members > 1 dreams from first frames only (the members' states after a burn-in "
                             "differ): set dream.start: first_frame")
        if self.dream.disagreement > 0 and self.mdrnn.members == 1:
            raise ValueError("dream.disagreement penalises the members' disagreement: it needs mdrnn.members > 1 "
                             "(or set it to 0.0)")
        if self.dream.member_pick == "dream" and self.mdrnn.members == 1:
            raise ValueError("dream.member_pick: dream picks one of the members per dream: it needs mdrnn.members > 1 "
                             "(or set it to step)")
        if self.dream.hazard == "calibrated" and self.collect.policy != "repeat":
            raise ValueError("dream.hazard: calibrated replays the collection policy in the dream, and only policy "
                             f"repeat can be replayed there (collect.policy is {self.collect.policy!r})")
        if self.dream.hazard == "calibrated" and self.iterations:
            raise ValueError("dream.hazard: calibrated fits the dream to the random rollouts alone: it does not run "
                             "with iterations (set iterations: {} or dream.hazard: model)")
        if self.iterations and self.controller.mode != "dream":
            raise ValueError("iterations need controller.mode: dream "
                             "(the iterative procedure trains C only in the dream)")
        if self.collect.policy not in POLICIES[self.env.id]:
            raise ValueError(f"collect.policy {self.collect.policy!r} does not play {self.env.id}; "
                             f"use one of {', '.join(POLICIES[self.env.id])}")
        if self.mdrnn.reward not in REWARDS[self.env.id]:
            raise ValueError(f"mdrnn.reward {self.mdrnn.reward!r} does not fit {self.env.id}; "
                             f"use one of {', '.join(REWARDS[self.env.id])}")
        return self

    @field_validator("iterations", mode="before")
    @classmethod
    def _chain(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            raise ValueError('must be a mapping such as {"1": "0", "2": "1"}, or {} for none')
        expected = {str(k): str(k - 1) for k in range(1, len(value) + 1)}
        if value != expected:
            shown = ", ".join(f'"{k}": "{v}"' for k, v in expected.items())
            raise ValueError(f"must map each iteration k to k-1, counting from 1, keys and values quoted "
                             f"(DVC's foreach needs strings): {{{shown}}} for {len(value)} iterations")
        return value


class ParamsError(ValueError):
    """A params file that does not match the schema; the message names the bad key."""


# pydantic error types where the value's type is wrong: the message also shows the value as YAML wrote it
_TYPE_ERRORS = {"int_type", "float_type", "bool_type", "string_type", "finite_number", "int_from_float", "dict_type"}


def _shown(value: Any) -> str:
    """A wrongly typed value as the user wrote it, with a hint where YAML read a number as text."""
    if isinstance(value, str):
        hint = " (YAML reads a number with an exponent but no dot as text: write 1.0e-3)" if re.fullmatch(
            r"[-+]?\d+[eE][-+]?\d+", value) else ""
        return f"the text {value!r}{hint}"
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def _format(err: ValidationError, source: str) -> str:
    first = err.errors()[0]
    # the env section is a union tagged by env.id: pydantic puts the tag in the path (env.CarRacing-v3.crop_rows)
    key = ".".join(str(p) for p in first["loc"] if p not in ENV_IDS) or "<root>"
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    elif first["type"] == "missing":
        msg = "missing key (every key is required: profiles are complete files)"
    msg = msg.removeprefix("Value error, ")
    if first["type"] in _TYPE_ERRORS:
        msg = f"{msg}, got {_shown(first['input'])}"
    more = len(err.errors()) - 1
    tail = f" (and {more} more)" if more else ""
    return f"{source}: {key}: {msg}{tail}"


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate a params file; raise ParamsError naming the first bad key."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ParamsError(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if raw is None or raw == {}:
        raise ParamsError(f"{path}: empty; every key is required (start from a complete profile in params/)")
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: top level must be a mapping")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise ParamsError(_format(exc, str(path))) from None
