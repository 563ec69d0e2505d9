"""Train M on encoded rollouts: sub-sequences, z sampled from (mu, sigma) each epoch; or fine-tune a previous M."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence
from tqdm import tqdm

from wm.checkpoint import Checkpoint, restore_training, training_state
from wm.config import MdrnnConfig
from wm.mdrnn import MDRNN, STEP_REWARD, Heads, State, gmm_nll


@dataclass
class MdrnnResult:
    """The trained model, per-epoch history and held-out metrics."""

    model: MDRNN
    history: list[dict[str, float]] = field(default_factory=list)
    heldout: dict[str, float] = field(default_factory=dict)
    best_epoch: int | None = None  # with cfg.patience: the epoch whose weights `model` holds


def make_windows(lengths: np.ndarray, seq_len: int, terminated: np.ndarray | None = None, seed: int = 0
                 ) -> np.ndarray:
    """Start offsets (into the concatenated arrays) of non-overlapping windows of seq_len + 1 steps.

    A rollout that ended in a terminal step (`terminated`, one flag per rollout) also gets one window that holds
    that step, the only place where the done head sees a done (without it M never learns that Take Cover's agent
    dies). The terminal step sits at a random position of its window (steps after it are masked in `_batch`): were
    it always last, an LSTM that starts every window from zero would learn "done at step seq_len" by counting.

    A rollout no longer than seq_len is one window from its first step (the steps past its end are masked), so M
    learns whole episodes from a zero state, as a dream starts; its terminal step, if any, is already in it.
    With mdrnn.window_state `episode`, a window inside a longer rollout starts from M's state after the rollout's
    earlier steps (`episode_state`), so there the terminal step's position no longer matters; it stays random."""
    rng = np.random.default_rng(seed)
    starts, offset = [], 0
    for i, n in enumerate(lengths):
        whole = int(n) <= seq_len
        own = [0] if whole else list(range(0, int(n) - seq_len, seq_len))
        if terminated is not None and terminated[i] and not whole:
            own.append(int(n) - 1 - int(rng.integers(0, min(seq_len, int(n)))))
        starts.extend(offset + s for s in own)
        offset += int(n)
    return np.asarray(starts, dtype=np.int64)


def step_tensors(latents: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """The encode stage's arrays as tensors, plus each step's rollout bounds: `first` and `end` (its last step)."""
    data = {k: torch.from_numpy(np.asarray(latents[k], dtype=np.float32))
            for k in ("mu", "logsigma", "actions", "rewards", "dones")}
    lengths = np.asarray(latents["lengths"], dtype=np.int64)
    ends = np.cumsum(lengths) - 1
    data["end"] = torch.from_numpy(np.repeat(ends, lengths))
    data["first"] = torch.from_numpy(np.repeat(ends - lengths + 1, lengths))
    return data


def _batch(data: dict[str, torch.Tensor], starts: torch.Tensor, seq_len: int, gen: torch.Generator,
           open_loop: int = 0, picks: int = 1):
    device = data["mu"].device
    starts = starts.to(device)
    idx = starts[:, None] + torch.arange(seq_len + 1, device=device)[None, :]
    end = data["end"][starts][:, None]  # the last step of each window's rollout
    valid, has_next = idx[:, :-1] <= end, idx[:, :-1] < end  # a terminal window runs past its rollout's end
    idx = torch.minimum(idx, end)  # inputs past the end repeat the last step; their losses are masked
    mu, sigma = data["mu"][idx], data["logsigma"][idx].exp()
    z = mu + sigma * torch.randn(mu.shape, generator=gen).to(device)  # drawn on the CPU: the same on any device
    noise = None
    if open_loop:  # the draws of M's own samples in the open-loop steps, drawn after z's: open_loop 0 is unchanged
        b = len(starts)
        noise = (torch.rand(b, open_loop, picks, generator=gen).to(device),
                 torch.randn(b, open_loop, mu.shape[-1], generator=gen).to(device))
    ages = idx[:, :-1] - data["first"][starts][:, None]  # each step's age in its episode (for mdrnn.age_scale)
    return (z[:, :-1], data["actions"][idx[:, :-1]], z[:, 1:], data["rewards"][idx[:, :-1]],
            data["dones"][idx[:, :-1]], valid, has_next, noise, ages)


@torch.no_grad()
def episode_state(model: MDRNN, data: dict[str, torch.Tensor], starts: torch.Tensor, gen: torch.Generator,
                  bf16: bool = False) -> State | None:
    """M's LSTM state at each window's first step after reading its rollout's earlier steps, z drawn from V's
    posterior as in training (zero for a window at its rollout's first step; None when all windows are there).

    No gradient flows into these steps: the window trains as truncated backpropagation through time, from the
    state the whole episode leads to under M's current weights."""
    device = data["mu"].device
    starts = starts.to(device)
    first = data["first"][starts]
    ages = starts - first  # steps of the rollout before the window
    if not bool((ages > 0).any()):
        return None
    reads = ages.clamp(min=1)
    idx = first[:, None] + torch.arange(int(ages.max()), device=device)[None, :]
    idx = torch.minimum(idx, (first + reads - 1)[:, None])  # padding past a window's own steps, packed away below
    mu, sigma = data["mu"][idx], data["logsigma"][idx].exp()
    z = mu + sigma * torch.randn(mu.shape, generator=gen).to(device)
    steps = pack_padded_sequence(model.inputs(z, data["actions"][idx], idx - first[:, None]), reads.cpu(),
                                 batch_first=True, enforce_sorted=False)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        _, (h, c) = model.lstm(steps)
    fresh = (ages == 0)[None, :, None]
    return h.float().masked_fill(fresh, 0.0), c.float().masked_fill(fresh, 0.0)


def heldout_rollouts(n: int, holdout: float, pick: str = "last") -> np.ndarray:
    """One flag per rollout: held out for validation, round(n * holdout) of them (none when n is 1).

    `last` holds out the newest rollouts; `spread` every (n / n_held)-th one, counting back from the newest, so rollouts
    appended by later iterations are held out in the same proportion as the first ones."""
    n_hold = int(round(n * holdout)) if n > 1 else 0
    flags = np.zeros(n, dtype=bool)
    if n_hold == 0:
        return flags
    if pick == "last":
        flags[n - n_hold:] = True
    else:
        flags[n - 1 - (np.arange(n_hold) * n) // n_hold] = True
    return flags


def tile_reward(rewards: np.ndarray) -> float:
    """What reaching a new tile pays in these rollouts (1000 / tiles on the track, the same on every track)."""
    positive = rewards[rewards > 0]
    if len(positive) == 0:
        raise ValueError("mdrnn.reward is 'tile' but no rollout step reached a new tile (no positive reward)")
    return float(np.median(positive)) - STEP_REWARD


def _losses(model: MDRNN, batch, reward_weight: float, done_weight: float = 1.0,
            bf16: bool = False, state: State | None = None) -> dict[str, torch.Tensor]:
    z, a, z_next, r, d, valid, has_next, noise, ages = batch
    with torch.autocast(z.device.type, dtype=torch.bfloat16, enabled=bf16):  # M's matrix products in bf16
        heads = (model(z, a, state, ages)[0] if noise is None
                 else model.unroll(z, a, noise[0].shape[1], *noise, state, ages))
    if bf16:  # the mixture's log-likelihood and the losses in fp32
        heads = Heads(*(h.float() for h in heads))
    step_nll = gmm_nll(z_next, heads.mus, heads.log_sigmas, heads.logit_pi)
    if not bool(valid.all()):  # a terminal window: only the steps up to the rollout's end count
        heads = Heads(*(h[valid] for h in heads))
        step_nll, z_next, r, d, has_next = step_nll[valid], z_next[valid], r[valid], d[valid], has_next[valid]
    nll = step_nll.mean() if bool(has_next.all()) else step_nll[has_next].mean()
    tile = (r > 0).float()
    weight = 1.0 + (reward_weight - 1.0) * tile  # the rare reward steps count reward_weight times
    if model.reward_kind == "tile":
        reward_loss = F.binary_cross_entropy_with_logits(heads.reward, tile, weight=weight)
    elif model.reward_kind == "survival":  # the dream pays +1 per step alive: nothing to learn
        reward_loss = torch.zeros((), device=r.device)
    else:
        reward_loss = (weight * (heads.reward - r).pow(2)).mean()
    # deaths are rare (one step per episode): done_weight counts them more, as the paper's Doom M does (10)
    pos_weight = torch.tensor(done_weight, device=d.device) if done_weight != 1.0 else None
    bce = F.binary_cross_entropy_with_logits(heads.done_logit, d, pos_weight=pos_weight)
    # Scale the NLL per latent dimension so the reward and done terms are not drowned out.
    return {"loss": nll / model.z_dim + reward_loss + bce, "nll": nll, "reward_loss": reward_loss,
            "reward_mse": F.mse_loss(model.expected_reward(heads), r), "done_bce": bce,
            "done_acc": ((heads.done_logit > 0).float() == d).float().mean()}


def train_mdrnn(latents: dict[str, np.ndarray], cfg: MdrnnConfig, seed: int = 0, progress: bool = True,
                init: MDRNN | None = None, checkpoint: Checkpoint | None = None,
                device: torch.device | str = "cpu", keep_final: bool = False) -> MdrnnResult:
    """Fit an MDRNN to the output of the encode stage for cfg.epochs; some rollouts are held out for validation.

    With cfg.patience, training stops once the held-out loss has not improved for that many epochs, and the returned
    M holds the best epoch's weights.

    With `init`, training continues from that M's weights (the iterative procedure fine-tunes M_{k-1}).
    With `checkpoint`, the state after each epoch is saved and a later run resumes from it, as train_vae does;
    `keep_final` saves it after the last epoch too (a trained member of an ensemble, kept until all are done).
    With cfg.bf16, M's forward pass trains under bf16 autocast; the losses and the held-out evaluation stay fp32.
    The data and M live on `device`; the returned M is on the CPU.
    """
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    data = step_tensors(latents)
    lengths = latents["lengths"]
    ends = np.cumsum(lengths) - 1
    terminated = np.asarray(latents["dones"], dtype=bool)[ends]
    windows = make_windows(lengths, cfg.seq_len, terminated, seed)
    held = heldout_rollouts(len(lengths), cfg.holdout, cfg.holdout_from)
    in_held = held[np.searchsorted(ends, windows)]  # windows start inside their rollout
    train_w, held_w = torch.from_numpy(windows[~in_held]), torch.from_numpy(windows[in_held])
    if len(train_w) == 0:
        raise ValueError(f"no training windows: rollouts are shorter than mdrnn.seq_len + 1 = {cfg.seq_len + 1}")
    z_dim = data["mu"].shape[1]
    bonus = tile_reward(np.asarray(latents["rewards"])) if cfg.reward == "tile" else 0.0
    model = MDRNN(z_dim, data["actions"].shape[1], cfg.hidden, cfg.gaussians, cfg.reward, bonus, cfg.dropout,
                  cfg.done_weight, cfg.mixture, cfg.age_scale)
    if init is not None:
        if ((init.z_dim, init.hidden, init.gaussians, init.reward_kind, init.mixture, init.age_scale)
                != (z_dim, cfg.hidden, cfg.gaussians, cfg.reward, cfg.mixture, cfg.age_scale)):
            raise ValueError("the M to fine-tune has another shape, mixture, reward head or age input than mdrnn "
                             "params ask for")
        model.load_state_dict(init.state_dict())
    device = torch.device(device)
    data = {k: v.to(device) for k, v in data.items()}
    model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    history: list[dict[str, float]] = []
    heldout: dict[str, float] = {}
    best = _Best()
    saved = checkpoint.load() if checkpoint else None
    if saved is not None:
        restore_training(model, opt, gen, *saved)
        history, heldout = saved[1]["history"], saved[1]["heldout"]
        best.restore(*saved)
        print(f"mdrnn: resuming after epoch {len(history)} of {cfg.epochs} from {checkpoint.path}")
    for epoch in range(len(history) + 1, cfg.epochs + 1):
        if cfg.patience is not None and best.epoch and epoch - 1 - best.epoch >= cfg.patience:
            print(f"mdrnn: held-out loss last improved at epoch {best.epoch}; stopping after epoch {epoch - 1}")
            break
        perm = train_w[torch.randperm(len(train_w), generator=gen)]
        sums: dict[str, float] = {}
        bar = tqdm(range(0, len(perm), cfg.batch_size), desc=f"mdrnn epoch {epoch}/{cfg.epochs}",
                   disable=not progress, unit="batch")
        for i in bar:
            starts = perm[i:i + cfg.batch_size]
            batch = _batch(data, starts, cfg.seq_len, gen, cfg.open_loop, model.picks)
            state = episode_state(model, data, starts, gen, cfg.bf16) if cfg.window_state == "episode" else None
            losses = _losses(model, batch, cfg.reward_weight, cfg.done_weight, cfg.bf16, state)
            opt.zero_grad(set_to_none=True)
            losses["loss"].backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + v.item() * len(starts)
            bar.set_postfix(loss=f"{losses['loss'].item():.3f}")
        row = {"epoch": float(epoch), **{f"train_{k}": v / len(perm) for k, v in sums.items()}}
        if len(held_w):
            heldout = evaluate_mdrnn(model, data, held_w, cfg, seed)
            row.update({f"val_{k}": v for k, v in heldout.items()})
            if cfg.patience is not None:
                best.update(model, epoch, heldout)
        history.append(row)
        if checkpoint and (epoch < cfg.epochs or keep_final):
            tensors, state = training_state(model, opt, gen)
            checkpoint.save({**tensors, **best.tensors()}, {**state, "history": history, "heldout": heldout,
                                                            **best.state()})
    if cfg.patience is not None and best.epoch:
        model.load_state_dict(best.weights)
        return MdrnnResult(model.cpu().eval(), history, best.heldout, best.epoch)
    return MdrnnResult(model.cpu().eval(), history, heldout)


def train_ensemble(latents: dict[str, np.ndarray], cfg: MdrnnConfig, seed: int = 0, progress: bool = True,
                   init: Sequence[MDRNN] = (), checkpoint: Checkpoint | None = None,
                   device: torch.device | str = "cpu") -> list[MdrnnResult]:
    """Train cfg.members Ms on the same rollouts, member k from seed + k (its own windows and initial weights), under
    bf16 autocast for k >= 1 when cfg.members_bf16. With `init` (the previous ensemble) member k fine-tunes init[k].

    With `checkpoint`, each member resumes from its own part of it and a trained member stays there until every
    member is done, so a killed stage trains again at most the member it was in. One member is train_mdrnn alone.
    """
    if init and len(init) != cfg.members:
        raise ValueError(f"the ensemble to fine-tune has {len(init)} members; mdrnn.members asks for {cfg.members}")
    results = []
    for k in range(cfg.members):
        member = cfg if k == 0 else cfg.model_copy(update={"bf16": cfg.members_bf16})
        if cfg.members > 1:
            print(f"mdrnn: member {k + 1} of {cfg.members} (seed {seed + k}{', bf16' if member.bf16 else ''})")
        results.append(train_mdrnn(latents, member, seed + k, progress, init[k] if init else None,
                                   checkpoint.part(k) if checkpoint else None, device, keep_final=k < cfg.members - 1))
    return results


@dataclass
class _Best:
    """The epoch with the lowest held-out loss so far and its weights (for mdrnn.patience)."""

    epoch: int = 0
    heldout: dict[str, float] = field(default_factory=dict)
    weights: dict[str, torch.Tensor] = field(default_factory=dict)

    def update(self, model: MDRNN, epoch: int, heldout: dict[str, float]) -> None:
        """Keep this epoch if its held-out loss is the lowest so far."""
        if not self.epoch or heldout["loss"] < self.heldout["loss"]:
            self.epoch, self.heldout = epoch, dict(heldout)
            self.weights = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def tensors(self) -> dict[str, torch.Tensor]:
        """The best weights, named for a training checkpoint."""
        return {f"best.{k}": v for k, v in self.weights.items()}

    def state(self) -> dict:
        """The rest, for the checkpoint's JSON side."""
        return {"best_epoch": self.epoch, "best_heldout": self.heldout}

    def restore(self, tensors: dict[str, torch.Tensor], state: dict) -> None:
        """Put back what tensors() and state() saved (nothing if the checkpoint has none)."""
        self.epoch, self.heldout = state.get("best_epoch", 0), state.get("best_heldout", {})
        self.weights = {k[len("best."):]: v for k, v in tensors.items() if k.startswith("best.")}


@torch.no_grad()
def evaluate_mdrnn(model: MDRNN, data: dict[str, torch.Tensor], windows: torch.Tensor, cfg: MdrnnConfig,
                   seed: int = 0) -> dict[str, float]:
    """Held-out next-z NLL (per step and per dim), reward MSE and done accuracy."""
    model.eval()
    gen = torch.Generator().manual_seed(seed + 1)
    sums: dict[str, float] = {}
    for i in range(0, len(windows), 256):
        starts = windows[i:i + 256]
        batch = _batch(data, starts, cfg.seq_len, gen, cfg.open_loop, model.picks)
        state = episode_state(model, data, starts, gen) if cfg.window_state == "episode" else None
        for k, v in _losses(model, batch, cfg.reward_weight, cfg.done_weight, state=state).items():
            sums[k] = sums.get(k, 0.0) + v.item() * len(starts)
    model.train()
    out = {k: v / len(windows) for k, v in sums.items()}
    out["nll_per_dim"] = out["nll"] / model.z_dim
    return out
