"""What each M training of a built workspace learned on its held-out rollouts, epoch by epoch, as one table.

Reads the per-epoch history every `mdrnn` stage writes (`plots/mdrnn.json` for M_0, `plots/iter<k>/mdrnn.json` for
each fine-tune of the iterative procedure) and prints, per training: the held-out next-z NLL per dimension and the
held-out reward loss at the first epoch, at their best epoch and at the last one, and the training reward loss at
the first and last epochs. A held-out loss that is best at the first epoch and rises from there says the extra
epochs only fitted the training rollouts. Nothing is trained or played.

Usage: python bench/mdrnn_curves.py WORKSPACE [WORKSPACE ...]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def histories(workspace: Path) -> list[tuple[str, list[dict[str, float]]]]:
    """(label, per-epoch rows) for M_0 and every fine-tune found, in iteration order."""
    found = []
    first = workspace / "plots" / "mdrnn.json"
    if first.exists():
        found.append(("M_0", json.loads(first.read_text())))
    numbered = {int(p.parent.name[4:]): p for p in (workspace / "plots").glob("iter*/mdrnn.json")
                if p.parent.name[4:].isdigit()}  # M_0's history is plots/mdrnn.json: no plots/iter0/mdrnn.json
    found += [(f"M_{k}", json.loads(numbered[k].read_text())) for k in sorted(numbered)]
    if not found:
        raise FileNotFoundError(f"no plots/mdrnn.json or plots/iter<k>/mdrnn.json under {workspace}")
    return found


def summarize(rows: list[dict[str, float]]) -> dict[str, float]:
    """First, best (with its epoch) and last held-out NLL per dimension and reward loss; first and last train
    reward loss."""
    if not rows:
        raise ValueError("an empty history: the stage ran no epoch")
    out: dict[str, float] = {"epochs": len(rows)}
    for key in ("val_nll_per_dim", "val_reward_loss"):
        values = [r[key] for r in rows]
        best = min(range(len(values)), key=values.__getitem__)
        out |= {f"{key}_first": values[0], f"{key}_best": values[best],
                f"{key}_best_epoch": int(rows[best]["epoch"]), f"{key}_last": values[-1]}
    out |= {"train_reward_loss_first": rows[0]["train_reward_loss"],
            "train_reward_loss_last": rows[-1]["train_reward_loss"]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("workspaces", nargs="+", type=Path)
    args = ap.parse_args()
    print("| workspace | M | epochs | held-out NLL/dim: first, best (epoch), last | held-out reward loss: first, "
          "best (epoch), last | train reward loss: first, last |")
    print("|---|---|---|---|---|---|")
    for ws in args.workspaces:
        for label, rows in histories(ws):
            s = summarize(rows)
            print(f"| {ws} | {label} | {s['epochs']} | {s['val_nll_per_dim_first']:.4f}, "
                  f"{s['val_nll_per_dim_best']:.4f} ({s['val_nll_per_dim_best_epoch']}), "
                  f"{s['val_nll_per_dim_last']:.4f} | {s['val_reward_loss_first']:.3f}, "
                  f"{s['val_reward_loss_best']:.3f} ({s['val_reward_loss_best_epoch']}), "
                  f"{s['val_reward_loss_last']:.3f} | {s['train_reward_loss_first']:.3f}, "
                  f"{s['train_reward_loss_last']:.3f} |")


if __name__ == "__main__":
    main()
