#!/usr/bin/env python3
"""Compare every table and array of two ``results/`` directories numerically.

Used to show that a refactoring leaves behaviour unchanged: run the same config (e.g.
tests/data/tiny.yaml) at two commits and compare. Every ``.csv``, ``.json``, ``.npz``, ``.npy``
and ``.safetensors`` file present in both is compared:

* CSV: row counts; the columns both have, value by value (numbers within ``--atol`` + ``--rtol``,
  NaN equal to NaN; anything else as text). Columns only one side has are reported as layout.
* JSON: recursively, the same way (keys only one side has are reported).
* npz / npy / safetensors: every array both have, by shape, dtype kind and value.

Fields that measure wall time (names containing ``wall_time``, ``elapsed``, ``seconds`` or ending
in ``_time_s``) are ignored; so are figures (.png, .pdf) and logs. Files only one side has are
listed. Exit status 1 when any compared value differs, 0 otherwise.

Example:
    python benchmarks/compare_runs.py /tmp/before/results /tmp/after/results
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

SUFFIXES = (".csv", ".json", ".npz", ".npy", ".safetensors")
TIMING = re.compile(r"wall_time|elapsed|seconds|_time_s$")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before", type=Path, help="results directory of the reference run")
    parser.add_argument("after", type=Path, help="results directory of the run to check")
    parser.add_argument("--atol", type=float, default=0.0, help="absolute tolerance (default 0: identical)")
    parser.add_argument("--rtol", type=float, default=0.0, help="relative tolerance (default 0)")
    return parser.parse_args(argv)


def files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.suffix in SUFFIXES and p.is_file()}


def close(a: np.ndarray, b: np.ndarray, atol: float, rtol: float) -> tuple[bool, float]:
    """(all equal within tolerance, largest absolute difference) of two arrays of one shape."""
    if a.dtype.kind in "biufc" and b.dtype.kind in "biufc":
        kind = np.complex128 if "c" in a.dtype.kind + b.dtype.kind else np.float64
        a, b = a.astype(kind), b.astype(kind)
        same = (a == b) | (np.isnan(a) & np.isnan(b))  # equal infinities too (a diverged loss)
        with np.errstate(invalid="ignore"):
            gap = np.where(same, 0.0, np.abs(a - b))
            gap = np.where(np.isnan(gap), np.inf, gap)
            ok = bool(np.all(same | (gap <= atol + rtol * np.abs(b))))
        return ok, float(gap.max(initial=0.0))
    return bool(np.array_equal(a.astype(str), b.astype(str))), math.nan


def compare_frames(before: pd.DataFrame, after: pd.DataFrame, atol, rtol) -> tuple[list[str], list[str]]:
    """(differences, layout notes)."""
    layout = []
    only_before = [c for c in before.columns if c not in after.columns]
    only_after = [c for c in after.columns if c not in before.columns]
    if only_before or only_after:
        layout.append(f"columns only before {only_before}, only after {only_after}")
    if len(before) != len(after):
        return [f"{len(before)} rows before, {len(after)} after"], layout
    differences = []
    for column in (c for c in before.columns if c in after.columns and not TIMING.search(c)):
        a, b = before[column].to_numpy(), after[column].to_numpy()
        numeric = pd.api.types.is_numeric_dtype(before[column]) and pd.api.types.is_numeric_dtype(after[column])
        ok, gap = close(a.astype(float), b.astype(float), atol, rtol) if numeric else close(a, b, atol, rtol)
        if not ok:
            differences.append(f"column {column}: max |diff| {gap:.3g}" if numeric else f"column {column} differs")
    return differences, layout


def compare_json(a, b, where: str, atol, rtol, differences: list, layout: list) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            layout.append(f"{where or '/'}: keys only before {sorted(set(a) - set(b))}, only after {sorted(set(b) - set(a))}")
        for key in a.keys() & b.keys():
            if not TIMING.search(str(key)):
                compare_json(a[key], b[key], f"{where}/{key}", atol, rtol, differences, layout)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            differences.append(f"{where}: {len(a)} items before, {len(b)} after")
        for i, (x, y) in enumerate(zip(a, b)):
            compare_json(x, y, f"{where}[{i}]", atol, rtol, differences, layout)
    elif isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        ok, gap = close(np.array([a], float), np.array([b], float), atol, rtol)
        if not ok:
            differences.append(f"{where}: {a!r} vs {b!r}")
    elif a != b:
        differences.append(f"{where}: {a!r} vs {b!r}")


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    if path.suffix == ".npy":
        return {"": np.load(path, allow_pickle=False)}
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    from safetensors.numpy import load_file

    return load_file(str(path))


def compare_file(before: Path, after: Path, atol, rtol) -> tuple[list[str], list[str]]:
    if before.suffix == ".csv":
        try:
            a, b = pd.read_csv(before), pd.read_csv(after)
        except pd.errors.EmptyDataError:
            return ([] if before.read_text() == after.read_text() else ["empty on one side"]), []
        return compare_frames(a, b, atol, rtol)
    if before.suffix == ".json":
        differences, layout = [], []
        compare_json(json.loads(before.read_text()), json.loads(after.read_text()), "", atol, rtol, differences, layout)
        return differences, layout
    a, b = load_arrays(before), load_arrays(after)
    differences, layout = [], []
    if set(a) != set(b):
        layout.append(f"arrays only before {sorted(set(a) - set(b))}, only after {sorted(set(b) - set(a))}")
    for key in sorted(a.keys() & b.keys()):
        if TIMING.search(key):
            continue
        if a[key].size == 0 and b[key].size == 0:
            if a[key].shape != b[key].shape:
                layout.append(f"{key or 'array'}: empty, shape {a[key].shape} vs {b[key].shape}")
            continue
        if a[key].shape != b[key].shape:
            differences.append(f"{key or 'array'}: shape {a[key].shape} vs {b[key].shape}")
            continue
        ok, gap = close(a[key], b[key], atol, rtol)
        if not ok:
            differences.append(f"{key or 'array'}: max |diff| {gap:.3g}")
    return differences, layout


def main(argv=None) -> int:
    args = parse_args(argv)
    before, after = files(args.before), files(args.after)
    for name in sorted(before - after):
        print(f"only before: {name}")
    for name in sorted(after - before):
        print(f"only after:  {name}")
    n_differ = n_layout = 0
    common = sorted(before & after)
    for name in common:
        differences, layout = compare_file(args.before / name, args.after / name, args.atol, args.rtol)
        for note in layout:
            print(f"layout   {name}: {note}")
        for difference in differences:
            print(f"DIFFERS  {name}: {difference}")
        n_differ += bool(differences)
        n_layout += bool(layout)
    print(f"{len(common)} files compared: {len(common) - n_differ} equal in every shared value "
          f"({n_layout} with layout changes), {n_differ} differ; "
          f"{len(before - after)} only before, {len(after - before)} only after")
    return 1 if n_differ else 0


if __name__ == "__main__":
    sys.exit(main())
