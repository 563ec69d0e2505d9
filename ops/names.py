"""The one place for the MLflow store, the experiment and the registered model names (imports nothing heavy)."""
from __future__ import annotations

import os
from pathlib import Path

EXPERIMENT = "wm"
VAE, MDRNN, CONTROLLER, AGENT = "wm-vae", "wm-mdrnn", "wm-controller", "wm-agent"
MODELS = (VAE, MDRNN, CONTROLLER, AGENT)  # pipeline order
AGENT_TAKECOVER = "wm-agent-takecover"  # Doom agents live apart from CarRacing's: each env has its own champion
AGENTS = {"CarRacing-v3": AGENT, "VizdoomTakeCover-v1": AGENT_TAKECOVER}
CHAMPION = "champion"

# What a person browsing the registry reads on each registered model.
DESCRIPTIONS = {
    VAE: "V: the convolutional VAE of World Models. 64x64x3 CarRacing frames <-> latent z. Weights as safetensors; "
         "load with wm.vae.load_vae. Registered by the `vae` stage.",
    MDRNN: "M: the MDN-RNN of World Models. An LSTM over [z, action] with a Gaussian mixture over the next z, a reward "
           "head and a done head. Weights as safetensors; load with wm.mdrnn.load_mdrnn. Registered by the `mdrnn` stage.",
    CONTROLLER: "C: the linear (or small) controller of World Models, trained by CMA-ES. Weights as safetensors; "
                "load with wm.controller.load_controller. Registered by the `controller` stage.",
    AGENT: "The whole World Models agent (V + M + C) as an MLflow pyfunc: raw CarRacing-v3 observations (N, 96, 96, 3) "
           "uint8 in, actions (N, 3) out; `reset=True` on an episode's first frame. @champion is the version with the "
           "best mean return on the fixed evaluation seeds. Registered by the `evaluate` stage.",
    AGENT_TAKECOVER: "The World Models agent for VizDoom's Take Cover as an MLflow pyfunc: raw vizdoom screens "
                     "obs['screen'] (N, H, W, 3) uint8 in (H, W as the model's config says: 120x160 by default), "
                     "actions (N, 1) out in {-1, 0, 1} (left, stay, right); `reset=True` on an episode's first frame.",
}


def agent_name(env_id: str) -> str:
    """The registered agent model of an env."""
    return AGENTS[env_id]


def tracking_uri(project: str | Path = ".") -> str:
    """MLFLOW_TRACKING_URI if set, else the project's embedded sqlite store."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path(project, 'mlflow.db').resolve()}"


def artifact_location(project: str | Path = ".") -> str:
    """Where the experiment keeps artifacts when it is created here."""
    return Path(project, "mlartifacts").resolve().as_uri()
