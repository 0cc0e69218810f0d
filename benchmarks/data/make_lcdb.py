"""Derive `lcdb.npz`, a compact set of real validation-error curves, from the LCDB package.

LCDB (Mohr et al. 2022, "LCDB 1.0: An Extensive Learning Curves Database for Classification
Tasks") ships its curve database inside the PyPI package `lcdb` 0.1.0 as CSV files: for 20
scikit-learn learners on OpenML datasets, the train/validation/test scores at training-set sizes
("anchors") 16, 23, 32, 45, ... (a factor √2 apart), for several outer and inner seeds.

This script reads `database-accuracy.csv` from the unpacked package (it never imports or
installs the package), and writes one group per dataset, in the format of `curves.npz`:

- ``<dataset>/steps``: the anchors (training-set sizes) every kept learner reached;
- ``<dataset>/curves``: learners x anchors, the validation error (1 − accuracy) averaged over
  the seeds, float32;
- ``<dataset>/learners``: the learner names, in row order.

A dataset is a task: benchmarks split by dataset, never by curve. Kept are the datasets with
at least `--min-anchors` anchors (long enough to see 10% of a curve), every `--stride`-th of
them by OpenML id, and on each the learners with a value at every anchor and a curve that
moves (range above 1e-3).

    pip download lcdb==0.1.0 --no-deps -d /tmp/lcdb
    tar xzf /tmp/lcdb/lcdb-0.1.0.tar.gz -C /tmp/lcdb
    python benchmarks/data/make_lcdb.py /tmp/lcdb/lcdb-0.1.0/lcdb

The shipped file was made by that command with the defaults (40 datasets).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "lcdb.npz"


def load_table(package: Path) -> dict[tuple[int, str], dict[int, list[float]]]:
    """(openml id, learner) -> anchor -> the validation errors of every seed."""
    import csv

    path = package / "database-accuracy.csv"
    if not path.exists():
        raise SystemExit(f"{path} not found: pass the directory of the unpacked `lcdb` package "
                         "(the one holding database-accuracy.csv)")
    table: dict[tuple[int, str], dict[int, list[float]]] = {}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if not row["score_valid"]:
                continue
            key = (int(row["openmlid"]), row["learner"].rsplit(".", 1)[-1])
            table.setdefault(key, {}).setdefault(int(row["size_train"]), []).append(
                1.0 - float(row["score_valid"]))
    return table


def by_dataset(table: dict[tuple[int, str], dict[int, list[float]]], min_anchors: int
               ) -> dict[int, tuple[np.ndarray, list[str], np.ndarray]]:
    """Per dataset: its shared anchors, the learners kept and their mean-error curves."""
    datasets: dict[int, dict[str, dict[int, list[float]]]] = {}
    for (openml_id, learner), anchors in table.items():
        datasets.setdefault(openml_id, {})[learner] = anchors
    out = {}
    for openml_id, learners in sorted(datasets.items()):
        counts: dict[int, int] = {}
        for anchors in learners.values():
            for anchor in anchors:
                counts[anchor] = counts.get(anchor, 0) + 1
        # the anchors most learners reached: a learner missing one of them is dropped
        quorum = max(counts.values())
        steps = np.array(sorted(a for a, c in counts.items() if c >= 0.75 * quorum))
        names, rows = [], []
        for learner, anchors in sorted(learners.items()):
            if not all(a in anchors for a in steps):
                continue
            curve = np.array([np.mean(anchors[a]) for a in steps])
            if np.ptp(curve) > 1e-3:
                names.append(learner)
                rows.append(curve)
        if steps.size >= min_anchors and len(rows) >= 5:
            out[openml_id] = (steps, names, np.array(rows, dtype=np.float32))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", type=Path, help="the unpacked lcdb package directory")
    parser.add_argument("--min-anchors", type=int, default=15)
    parser.add_argument("--stride", type=int, default=0,
                        help="keep every stride-th dataset (0: as many as give --datasets)")
    parser.add_argument("--datasets", type=int, default=40)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    found = by_dataset(load_table(args.package), args.min_anchors)
    ids = sorted(found)
    stride = args.stride or max(1, len(ids) // args.datasets)
    kept = ids[::stride][:args.datasets]
    arrays: dict[str, np.ndarray] = {}
    for openml_id in kept:
        steps, names, curves = found[openml_id]
        arrays[f"openml{openml_id}/steps"] = steps.astype(float)
        arrays[f"openml{openml_id}/curves"] = curves
        arrays[f"openml{openml_id}/learners"] = np.array(names)
    np.savez_compressed(args.out, **arrays)
    total = sum(found[i][2].shape[0] for i in kept)
    print(f"{len(ids)} datasets with >= {args.min_anchors} anchors; kept {len(kept)} "
          f"(stride {stride}), {total} curves -> {args.out} "
          f"({args.out.stat().st_size / 1e3:.0f} KB)")


if __name__ == "__main__":
    main()
