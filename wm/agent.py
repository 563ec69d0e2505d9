"""The full agent (V + M + C) acting in the real environment, and episode rollouts with it."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from wm.config import EnvConfig
from wm.controller import Controller, load_controller
from wm.envs import make_env
from wm.mdrnn import MDRNN, load_mdrnn
from wm.vae import ConvVAE, load_vae, to_input


class Agent:
    """Stateful policy over preprocessed 64x64 frames: z = mu(frame) (or a draw from V's posterior when C's z_input
    says `sample`), a = C(z, h), then h advances through M. With C's `action_repeat` k, C picks on every k-th frame
    and the agent plays that action until the next pick; M reads every frame and the action played."""

    def __init__(self, vae: ConvVAE, mdrnn: MDRNN, controller: Controller) -> None:
        self.vae, self.mdrnn, self.controller = vae, mdrnn, controller
        self.reset()

    def reset(self, seed: int = 0) -> None:
        """Forget the recurrent state (call at the start of every episode); `seed` seeds the z draws, if any."""
        self.state = self.mdrnn.initial_state(1)
        self.age = 0  # steps M has read this episode (an M with age input reads it)
        self.steps = 0  # frames acted on this episode: C picks on every action_repeat-th
        self.held: torch.Tensor | None = None
        self.gen = torch.Generator().manual_seed(seed)

    @torch.no_grad()
    def act(self, frame: np.ndarray, noise: np.ndarray | None = None) -> np.ndarray:
        """Action for one preprocessed uint8 frame (64, 64, 3); `noise` (action_dim,) is added and the result clipped
        to the action box, then snapped to what the env executes, before M sees it: h follows the action taken.
        Between C's picks (`action_repeat` > 1) the held action is played again and `noise` is not read."""
        mu, logvar = self.vae.encode(to_input(torch.from_numpy(np.array(frame)).unsqueeze(0)))
        if self.controller.z_input == "sample":  # C and M read the same draw, as in the dream
            mu = mu + (0.5 * logvar).exp() * torch.randn(mu.shape, generator=self.gen)
        if self.held is None or self.steps % self.controller.action_repeat == 0:
            actions = self.controller.actions
            action = actions.to_env(self.controller(mu, self.state[0][0], self.state[1][0]))
            if noise is not None:
                action = torch.clamp(action + torch.as_tensor(noise, dtype=action.dtype), *actions.bounds())
            self.held = actions.snap(action)
        action = self.held
        self.steps += 1
        if self.controller.uses_memory:  # M costs time; skip it when C does not read h
            self.state = self.mdrnn.advance(mu, action, self.state, self.age)  # M was trained on env actions
            self.age += 1
        return action[0].numpy()


def load_agent(vae_path: str | Path, mdrnn_path: str | Path, controller_path: str | Path) -> Agent:
    """Build an Agent from the three saved models."""
    return Agent(load_vae(vae_path), load_mdrnn(mdrnn_path), load_controller(controller_path))


def run_episode(agent: Agent, env_cfg: EnvConfig, seed: int, max_steps: int = 1000,
                patience: int | None = None) -> dict[str, float]:
    """Play one episode in the real env; `patience` ends it early after that many steps without reward gain."""
    env = make_env(env_cfg)
    try:
        frame, _ = env.reset(seed=seed)
        agent.reset(seed)
        total, best, since_best, steps = 0.0, -np.inf, 0, 0
        for steps in range(1, max_steps + 1):
            frame, reward, terminated, truncated, _ = env.step(agent.act(frame))
            total += float(reward)
            if total > best:
                best, since_best = total, 0
            else:
                since_best += 1
            if terminated or truncated or (patience is not None and since_best >= patience):
                break
    finally:
        env.close()
    return {"return": total, "steps": steps, "seed": seed}
