"""`wm-agent`: the whole World Models agent (V + M + C) as an MLflow pyfunc, logged as models-from-code.

Contract
--------
Input: one uint8 tensor of raw CarRacing-v3 observations, shape (N, 96, 96, 3) (add the batch axis to a
single observation: `obs[None]`). Rows are consecutive frames of ONE episode, processed in order.

Params: `reset` (bool, default False). True forgets the recurrent state before the first row: pass it with
the first observation of every episode.

Output: float32 actions, shape (N, 3): steer in [-1, 1], gas and brake in [0, 1], ready for `env.step`.

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
preprocessing (crop rows, frame size) comes from the model config; the `wm` code is bundled beside it.
"""
from __future__ import annotations

from typing import Any

import mlflow
import numpy as np
from mlflow.models import ModelSignature
from mlflow.pyfunc import PythonModel, PythonModelContext
from mlflow.types import ParamSchema, ParamSpec, Schema, TensorSpec

OBS_SHAPE = (96, 96, 3)


def signature() -> ModelSignature:
    """The model signature described in the module docstring."""
    return ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.uint8), (-1, *OBS_SHAPE))]),
        outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, 3))]),
        params=ParamSchema([ParamSpec("reset", "boolean", False)]),
    )


def input_example() -> tuple[np.ndarray, dict[str, bool]]:
    """A one-frame example: the first observation of an episode."""
    return np.zeros((1, *OBS_SHAPE), dtype=np.uint8), {"reset": True}


class AgentModel(PythonModel):
    """Raw observations in, CarRacing actions out; M's recurrent state lives in the loaded instance."""

    def load_context(self, context: PythonModelContext) -> None:
        """Build the agent from the bundled safetensors files."""
        from wm.agent import load_agent

        cfg = context.model_config or {}
        self.crop_rows, self.frame_size = int(cfg.get("crop_rows", 84)), int(cfg.get("frame_size", 64))
        art = context.artifacts
        self.agent = load_agent(art["vae"], art["mdrnn"], art["controller"])

    def predict(self, context: PythonModelContext, model_input: np.ndarray,
                params: dict[str, Any] | None = None) -> np.ndarray:
        """Actions for consecutive observations of one episode; `reset` starts a new episode first."""
        from wm.envs.carracing import preprocess_frame

        obs = np.asarray(model_input, dtype=np.uint8).reshape(-1, *OBS_SHAPE)
        if (params or {}).get("reset"):
            self.agent.reset()
        actions = [self.agent.act(preprocess_frame(o, self.crop_rows, self.frame_size)) for o in obs]
        return np.stack(actions).astype(np.float32) if actions else np.zeros((0, 3), np.float32)


mlflow.models.set_model(AgentModel())
