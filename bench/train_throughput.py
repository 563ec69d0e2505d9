"""How fast V and M train on this machine: V images/s and M latent-steps/s, per batch size and memory format.

Times the training step the stages run (forward, loss, backward, Adam) on synthetic inputs of the real shapes:
64x64x3 uint8 frames for V, (batch, seq_len) windows of z and actions for M. Prints the median of `--rounds`
timed rounds after one warm-up round, and what `vae.batch_size` / `mdrnn.batch_size` to pick from it.

It also prints where the floor is: the FLOPs of one training step per image or latent-step (counted by torch's
FlopCounterMode, plus the LSTM's matrix products, which it does not see), the GFLOP/s each rate means, and the
GFLOP/s of a large matrix product on the same threads, which no training step of these small layers beats.

    python bench/train_throughput.py                       # both, on the CPU with torch's default threads
    python bench/train_throughput.py --device cuda --vae-batches 128 1024 --mdrnn-batches 100 1024
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from wm.mdrnn import MDRNN  # noqa: E402
from wm.train_mdrnn import _losses  # noqa: E402
from wm.vae import ConvVAE, to_input, vae_loss  # noqa: E402


def _rounds(step, n_items: int, rounds: int, seconds: float, device: torch.device) -> float:
    """Median items/s over `rounds` rounds of about `seconds` each."""
    step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    rates = []
    for _ in range(rounds):
        count, start = 0, time.perf_counter()
        while True:
            step()
            count += 1
            if device.type == "cuda":
                torch.cuda.synchronize()
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                break
        rates.append(count * n_items / elapsed)
    return statistics.median(rates)


def matmul_gflops(device: torch.device, dtype: torch.dtype, rounds: int, seconds: float, n: int = 2048) -> float:
    """GFLOP/s of an n x n matrix product: about the most these threads do on dense float work."""
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    return _rounds(lambda: a @ b, 1, rounds, seconds, device) * 2 * n**3 / 1e9


def vae_flops() -> float:
    """FLOPs of V's training step (forward and backward) per image."""
    model, x = ConvVAE(32), to_input(torch.randint(0, 255, (2, 64, 64, 3), dtype=torch.uint8))
    with FlopCounterMode(display=False) as counter:
        recon, mu, logvar = model(x)
        vae_loss(recon, x, mu, logvar, 0.5)[0].backward()
    return counter.get_total_flops() / 2


def mdrnn_flops(hidden: int, z_dim: int = 32, actions: int = 3) -> float:
    """FLOPs of M's training step per latent-step: the heads as counted, plus the LSTM's gate products (4 gates of
    hidden x (input + hidden), a multiply-add each, forward) times 3 for forward and backward."""
    model = MDRNN(z_dim, actions, hidden, 5, "tile", 3.0)
    z, a = torch.randn(2, 2, z_dim), torch.rand(2, 1, actions)
    r, ones = torch.zeros(2, 1), torch.ones(2, 1, dtype=torch.bool)
    with FlopCounterMode(display=False) as counter:
        _losses(model, (z[:, :1], a, z[:, 1:], r, r, ones, ones, None), 1.0)["loss"].backward()
    lstm = 3 * 2 * 4 * hidden * (z_dim + actions + hidden)
    return counter.get_total_flops() / 2 + lstm


def vae_rate(batch: int, channels_last: bool, bf16: bool, device: torch.device, rounds: int, seconds: float) -> float:
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = ConvVAE(32).to(device, memory_format=fmt)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    frames = torch.randint(0, 255, (batch, 64, 64, 3), dtype=torch.uint8, device=device)

    def step() -> None:
        x = to_input(frames).contiguous(memory_format=fmt)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            recon, mu, logvar = model(x)
        loss, _, _ = vae_loss(recon, x, mu.float(), logvar.float(), 0.5)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return _rounds(step, batch, rounds, seconds, device)


def mdrnn_rate(batch: int, seq_len: int, hidden: int, bf16: bool, device: torch.device, rounds: int,
               seconds: float) -> float:
    torch.manual_seed(0)
    model = MDRNN(32, 3, hidden, 5, "tile", 3.0).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    z = torch.randn(batch, seq_len + 1, 32, device=device)
    a = torch.rand(batch, seq_len, 3, device=device)
    r = (torch.rand(batch, seq_len, device=device) < 0.02).float() * 3.0
    d = torch.zeros(batch, seq_len, device=device)
    ones = torch.ones(batch, seq_len, dtype=torch.bool, device=device)
    data = (z[:, :-1], a, z[:, 1:], r, d, ones, ones, None)

    def step() -> None:
        loss = _losses(model, data, 1.0, bf16=bf16)["loss"]  # as `mdrnn.bf16` trains: M in bf16, the losses in fp32
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    return _rounds(step, batch * seq_len, rounds, seconds, device)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    ap.add_argument("--vae-batches", type=int, nargs="*", default=[32, 128, 256])
    ap.add_argument("--mdrnn-batches", type=int, nargs="*", default=[32, 128, 512])
    ap.add_argument("--seq-len", type=int, default=32)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--bf16", action="store_true", help="V and M under bf16 autocast too")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=3.0, help="length of one timed round")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__} on {name}; median of {args.rounds} rounds of {args.seconds:.0f} s")
    precisions = (False, True) if args.bf16 else (False,)
    for bf16 in precisions:
        dtype = torch.bfloat16 if bf16 else torch.float32
        print(f"ceiling: 2048 x 2048 matrix product in {str(dtype)[6:]}: "
              f"{matmul_gflops(device, dtype, args.rounds, args.seconds):,.0f} GFLOP/s")
    v_flops, m_flops = vae_flops(), mdrnn_flops(args.hidden)
    print(f"one training step: V {v_flops / 1e6:,.1f} MFLOP per image, M {m_flops / 1e6:,.2f} MFLOP per latent-step")
    for batch in args.vae_batches:
        for cl in (False, True):
            for bf16 in precisions:
                rate = vae_rate(batch, cl, bf16, device, args.rounds, args.seconds)
                print(f"V  batch {batch:>5}  {'channels-last' if cl else 'contiguous   '}  "
                      f"{'bf16' if bf16 else 'fp32'}  {rate:>10,.0f} images/s  {rate * v_flops / 1e9:>6,.1f} GFLOP/s")
    for batch in args.mdrnn_batches:
        for bf16 in precisions:
            rate = mdrnn_rate(batch, args.seq_len, args.hidden, bf16, device, args.rounds, args.seconds)
            print(f"M  batch {batch:>5}  seq_len {args.seq_len}  hidden {args.hidden}  {'bf16' if bf16 else 'fp32'}  "
                  f"{rate:>10,.0f} latent-steps/s  {rate * m_flops / 1e9:>6,.1f} GFLOP/s")


if __name__ == "__main__":
    main()
