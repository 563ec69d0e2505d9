"""The dream's verdict on a trained C, and pictures of how M sees the real world.

- `dream_score` / `dream_frames`: C's mean dream return on the check seeds, and one dream decoded through V.
- `real_trace`: one real episode of the agent (frames, actions, rewards).
- `predicted_rewards`: M's reward along that episode, teacher-forced on the real latents and actions.
- `open_loop_dream`: M imagining the same episode from the same first frame with the same actions, never
  seeing the real frames again; decoded next to the real frames it shows where M's world drifts.
- `recon_grid`: real frames above V's reconstructions.
"""
from __future__ import annotations

import numpy as np
import torch

from wm.agent import Agent
from wm.config import EnvConfig
from wm.controller import BatchedController, Controller
from wm.dream_fitness import DreamFitness
from wm.envs import make_env
from wm.mdrnn import MDRNN
from wm.seeds import check_seeds
from wm.vae import ConvVAE, to_input
from wm.video import decode_latents


def dream_score(fitness: DreamFitness, controller: Controller, seed: int, episodes: int) -> float:
    """Mean dream return of `controller` on the check seeds (the ones CMA-ES checks its mean on)."""
    return float(np.mean(fitness.population([controller.get_flat()], check_seeds(seed, episodes))))


def dream_frames(fitness: DreamFitness, controller: Controller, vae: ConvVAE, seed: int
                 ) -> tuple[np.ndarray, float, int]:
    """One full-length dream of `controller` (no patience cut) decoded through V: (frames, return, steps)."""
    dream = fitness.world(patience=False)
    flat = torch.as_tensor(controller.get_flat(), dtype=torch.float32).unsqueeze(0).to(dream.device)
    policy = BatchedController(controller.arch, flat, dream.z_dim, dream.hidden, controller.hidden_units,
                               controller.env, controller.action_repeat)
    result = dream.rollout(policy, check_seeds(seed, 1), record=True)
    steps = int(result.steps[0, 0])
    return decode_latents(vae, result.latents[: steps + 1, 0, 0]), float(result.returns[0, 0]), steps


def real_trace(agent: Agent, env_cfg: EnvConfig, seed: int, max_steps: int) -> dict[str, np.ndarray]:
    """One real episode of the agent: frames (T, 64, 64, 3) seen, actions (T, action_dim) taken, rewards (T,)
    received and dones (T,) (the env ended the episode: off the track, or dead)."""
    env = make_env(env_cfg)
    frames, actions, rewards, dones = [], [], [], []
    try:
        frame, _ = env.reset(seed=seed)
        agent.reset(seed)
        for _ in range(max_steps):
            action = agent.act(frame)
            frames.append(frame)
            actions.append(action)
            frame, reward, terminated, truncated, _ = env.step(action)
            rewards.append(reward)
            dones.append(terminated)
            if terminated or truncated:
                break
    finally:
        env.close()
    return {"frames": np.stack(frames), "actions": np.stack(actions).astype(np.float32),
            "rewards": np.asarray(rewards, dtype=np.float32), "dones": np.asarray(dones, dtype=bool)}


@torch.no_grad()
def encode_mu(vae: ConvVAE, frames: np.ndarray) -> torch.Tensor:
    """mu of every frame: (T, z)."""
    return torch.cat([vae.encode(to_input(torch.from_numpy(frames[i:i + 256])))[0]
                      for i in range(0, len(frames), 256)])


@torch.no_grad()
def predicted_rewards(mdrnn: MDRNN, vae: ConvVAE, trace: dict[str, np.ndarray]) -> np.ndarray:
    """M's reward for each real step, given the real latents and actions up to it (teacher forcing)."""
    heads, _ = mdrnn(encode_mu(vae, trace["frames"]).unsqueeze(0), torch.from_numpy(trace["actions"]).unsqueeze(0))
    return mdrnn.expected_reward(heads)[0].numpy()


@torch.no_grad()
def predicted_done(mdrnn: MDRNN, vae: ConvVAE, trace: dict[str, np.ndarray]) -> np.ndarray:
    """M's P(done) for each real step, teacher-forced like predicted_rewards (in Take Cover: P(the agent dies))."""
    heads, _ = mdrnn(encode_mu(vae, trace["frames"]).unsqueeze(0), torch.from_numpy(trace["actions"]).unsqueeze(0))
    return torch.sigmoid(heads.done_logit[0]).numpy()


@torch.no_grad()
def open_loop_dream(mdrnn: MDRNN, vae: ConvVAE, trace: dict[str, np.ndarray], temperature: float,
                    seed: int) -> tuple[np.ndarray, np.ndarray]:
    """M's imagination of the episode from its first real frame with the real actions: (frames, rewards)."""
    gen = torch.Generator().manual_seed(seed)
    z = encode_mu(vae, trace["frames"][:1])
    state = mdrnn.initial_state(1)
    latents, rewards = [z[0]], []
    for age, action in enumerate(torch.from_numpy(trace["actions"][:-1])):
        uniform, normal = torch.rand(1, mdrnn.picks, generator=gen), torch.randn(1, mdrnn.z_dim, generator=gen)
        z, heads, state = mdrnn.step(z, action.unsqueeze(0), state, temperature, uniform, normal, age=age)
        latents.append(z[0])
        rewards.append(float(mdrnn.expected_reward(heads)[0]))
    return decode_latents(vae, torch.stack(latents)), np.asarray(rewards, dtype=np.float32)


def side_by_side(real: np.ndarray, dreamed: np.ndarray, gap: int = 2) -> np.ndarray:
    """Frames (T, H, W, 3) of the real episode and of M's open-loop dream next to each other."""
    n = min(len(real), len(dreamed))
    sep = np.full((n, real.shape[1], gap, 3), 255, dtype=np.uint8)
    return np.concatenate([real[:n], sep, dreamed[:n]], axis=2)


@torch.no_grad()
def recon_grid(vae: ConvVAE, frames: np.ndarray, n: int = 8) -> np.ndarray:
    """One image: n real frames evenly spread over the episode (top row) above V's reconstructions (bottom)."""
    picks = frames[np.linspace(0, len(frames) - 1, n).round().astype(int)]
    recon = decode_latents(vae, encode_mu(vae, picks))
    return np.concatenate([np.concatenate(list(picks), axis=1), np.concatenate(list(recon), axis=1)], axis=0)
