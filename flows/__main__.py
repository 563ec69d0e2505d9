"""`python -m flows <stage> [--params params.yaml] --name PATH ...`: run one pipeline stage as a Prefect flow.

dvc.yaml gives every stage its paths; `python -m flows <stage> --help` lists them.
"""
from __future__ import annotations

import sys

from flows.runtime import STAGES, launch


def main(argv: list[str] | None = None) -> None:
    """Dispatch to the named stage."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(f"usage: python -m flows {{{','.join(STAGES)}}} [--params params.yaml] --name PATH ...")
        raise SystemExit(0 if args else 2)
    launch(args[0], args[1:])


if __name__ == "__main__":
    main()
