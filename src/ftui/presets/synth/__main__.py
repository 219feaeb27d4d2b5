"""``python -m ftui.presets.synth [--out DIR] [--only sql|viggo|json_emotions]``."""

from __future__ import annotations

import argparse
from pathlib import Path

from ftui.presets.synth import DATA_DIR, DATASETS, write


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ftui.presets.synth",
        description="Write ftui's synthetic preset samples (JSON Lines, deterministic).",
    )
    parser.add_argument("--out", type=Path, default=DATA_DIR,
                        help=f"output folder (default: {DATA_DIR})")
    parser.add_argument("--only", choices=[d.name for d in DATASETS],
                        help="write only this sample")
    args = parser.parse_args(argv)
    for dataset in DATASETS:
        if args.only and dataset.name != args.only:
            continue
        path = write(dataset, args.out)
        lines = path.read_bytes().count(b"\n")
        print(f"{path}: {lines} rows, {path.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
