"""`wm-agent`: the whole World Models agent (V + M + C) as an MLflow pyfunc, logged as models-from-code.

Contract
--------
Input: one uint8 tensor of raw observations, rows consecutive frames of ONE episode, processed in order (add the
batch axis to a single observation: `obs[None]`):
- CarRacing-v3 (`wm-agent`): the env's observation, shape (N, 96, 96, 3);
- VizdoomTakeCover-v1 (`wm-agent-takecover`): vizdoom's `obs["screen"]`, shape (N, H, W, 3) at the screen size the
  model was trained with (`obs_shape` in its config; (120, 160, 3) for `env.screen: 160x120`).

Params: `reset` (bool, default False). True forgets the recurrent state before the first row: pass it with
the first observation of every episode.

Output: float32 actions, ready for the env:
- CarRacing-v3: shape (N, 3), steer in [-1, 1], gas and brake in [0, 1], for `env.step`;
- Take Cover: shape (N, 1) in {-1, 0, 1}: move left, stay, move right (wm.envs.doom.TakeCover maps them to
  vizdoom's Discrete(3) action).

State: the loaded model keeps M's LSTM state between predict calls, so an episode is played one call per
step, exactly as `wm.agent.Agent` plays it in the `evaluate` stage:

    model = mlflow.pyfunc.load_model("models:/wm-agent@champion")
    obs, _ = env.reset(seed=seed)
    action = model.predict(obs[None], params={"reset": True})[0]
    while ...:
        obs, reward, terminated, truncated, _ = env.step(action)
        action = model.predict(obs[None])[0]

A batch with N > 1 replays recorded frames in order (for example a whole recorded episode with reset=True).
One loaded model plays one episode at a time: load one instance per concurrent episode (or per worker).
The weights are the three safetensors artifacts `vae`, `mdrnn`, `controller` (no pickle anywhere); the
preprocessing (env, observation shape, crop rows, frame size) comes from the model config; the `wm` code is bundled
beside it.
"""
from __future__ import annotations

from typing import Any

import mlflow
import numpy as np
from mlflow.models import ModelSignature
from mlflow.pyfunc import PythonModel, PythonModelContext
from mlflow.types import ParamSchema, ParamSpec, Schema, TensorSpec

CARRACING_OBS = (96, 96, 3)


def _shapes(config: dict[str, Any]) -> tuple[tuple[int, ...], int]:
    """(raw observation shape, action size) of the env in a model config (an old config is CarRacing's)."""
    if config.get("env", "CarRacing-v3") == "CarRacing-v3":
        return CARRACING_OBS, 3
    return tuple(int(x) for x in config["obs_shape"]), 1


def signature(config: dict[str, Any]) -> ModelSignature:
    """The model signature described in the module docstring, for the env of `config`."""
    obs, actions = _shapes(config)
    return ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.uint8), (-1, *obs))]),
        outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, actions))]),
        params=ParamSchema([ParamSpec("reset", "boolean", False)]),
    )


def input_example(config: dict[str, Any]) -> tuple[np.ndarray, dict[str, bool]]:
    """A one-frame example: the first observation of an episode."""
    return np.zeros((1, *_shapes(config)[0]), dtype=np.uint8), {"reset": True}


class AgentModel(PythonModel):
    """Raw observations in, env actions out; M's recurrent state lives in the loaded instance."""

    def load_context(self, context: PythonModelContext) -> None:
        """Build the agent from the bundled safetensors files."""
        from wm.agent import load_agent

        cfg = context.model_config or {}
        self.env = cfg.get("env", "CarRacing-v3")
        self.obs_shape, self.action_size = _shapes(cfg)
        self.crop_rows, self.frame_size = int(cfg.get("crop_rows", 84)), int(cfg.get("frame_size", 64))
        art = context.artifacts
        self.agent = load_agent(art["vae"], art["mdrnn"], art["controller"])

    def predict(self, context: PythonModelContext, model_input: np.ndarray,
                params: dict[str, Any] | None = None) -> np.ndarray:
        """Actions for consecutive observations of one episode; `reset` starts a new episode first."""
        obs = np.asarray(model_input, dtype=np.uint8).reshape(-1, *self.obs_shape)
        if (params or {}).get("reset"):
            self.agent.reset()
        actions = [self.agent.act(self._frame(o)) for o in obs]
        return np.stack(actions).astype(np.float32) if actions else np.zeros((0, self.action_size), np.float32)

    def _frame(self, obs: np.ndarray) -> np.ndarray:
        if self.env == "CarRacing-v3":
            from wm.envs.carracing import preprocess_frame
            return preprocess_frame(obs, self.crop_rows, self.frame_size)
        from wm.envs.doom import preprocess_screen
        return preprocess_screen(obs, self.frame_size)


mlflow.models.set_model(AgentModel())
