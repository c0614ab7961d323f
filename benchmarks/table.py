"""Print a Markdown table that compares the JSON records written by ``benchmarks/speed.py --json``.

    python benchmarks/table.py benchmarks/results/london_64_*.json

One row per record, in the order given, named by its file; the columns are the figures that
docs/benchmarks.md compares.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

# Header and record key of each column. cell() builds "record" and "peak_memory", which are not record keys.
COLUMNS = (
    ("record", "record"),
    ("precision", "precision"),
    ("bare loop, images/s", "bare_images_per_second"),
    ("Lightning, images/s", "lightning_images_per_second"),
    ("Lightning / bare", "lightning_over_bare"),
    ("loader / training", "loader_over_training"),
    ("GFLOP/s (bare)", "achieved_gflops"),
    ("of matmul", "fraction_of_matmul"),
    ("peak MiB (bare, Lightning)", "peak_memory"),
    ("render frames/s", "render_frames_per_second"),
)


def cell(path: Path, record: dict, key: str) -> str:
    if key == "record":
        return f"`{path.stem}`"
    if key == "peak_memory":
        bare, lightning = record.get("bare_peak_memory_mib"), record.get("lightning_peak_memory_mib")
        return f"{bare:.0f}, {lightning:.0f}" if bare and lightning else "-"
    value = record.get(key)
    if value is None:
        return "-"
    if key == "fraction_of_matmul":
        return f"{value:.0%}"
    if key == "lightning_over_bare":
        return f"{value:.3f}"
    if key == "loader_over_training":
        return f"{value:.0f}x"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def row(path: Path, record: dict) -> str:
    return "| " + " | ".join(cell(path, record, key) for _, key in COLUMNS) + " |"


def read_record(path: Path) -> dict:
    """Load one record, and raise SystemExit for a file that benchmarks/speed.py did not write."""
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SystemExit(f"{path}: not a benchmark record ({error})") from error
    if not isinstance(record, dict) or not {"precision", "loader_images_per_second"} <= set(record):
        raise SystemExit(f"{path}: not a benchmark record (no precision and loader_images_per_second keys); pass files written by benchmarks/speed.py --json")
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("records", nargs="+", type=Path, help="JSON files written by benchmarks/speed.py --json")
    args = parser.parse_args()
    records = [(path, read_record(path)) for path in args.records]
    print("| " + " | ".join(name for name, _ in COLUMNS) + " |")
    print("|" + " --- |" * len(COLUMNS))
    for path, record in records:
        print(row(path, record))


if __name__ == "__main__":
    main()
