"""Run Optuna's public examples on hyperlaw with only their imports changed.

    python benchmarks/optuna_examples.py PATH/TO/optuna-examples [--only basic sklearn ...]

PATH is a checkout of https://github.com/optuna/optuna-examples (this script downloads
nothing and the repository's code is not part of hyperlaw). Each example of the chosen
folders (default: basic, faq, sklearn, lightgbm, xgboost, multi_objective) is copied to a
temporary directory, its `import optuna...` / `from optuna... import ...` lines are rewritten
to `hyperlaw.optuna` (no other line changes), and it runs as it is, in a fresh interpreter
with a timeout, with the same PYTHONPATH as this script. Examples that use a feature only
Optuna has (its artifact store, Terminator, LightGBM Tuner, OptunaSearchCV, BoTorch) or
that download a dataset are listed with the reason and not run (`--run-all` runs them too).

The result is a Markdown table (example, result, seconds, reason; with `--reference`, the
result and seconds of the unchanged example on Optuna) on stdout and, with `--out`, in a
JSON file.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FOLDERS = ("basic", "faq", "sklearn", "lightgbm", "xgboost", "multi_objective")

#: a source pattern -> why the example is not expected to run on hyperlaw
OPTUNA_ONLY = {
    r"optuna\.artifacts": "Optuna's artifact store",
    r"optuna\.terminator": "Optuna's Terminator",
    r"optuna\.integration\.lightgbm": "Optuna's LightGBM Tuner (stepwise tuning)",
    r"OptunaSearchCV": "optuna.integration.OptunaSearchCV (hyperlaw: HyperlawSearchCV)",
    r"BoTorchSampler": "Optuna's BoTorch sampler",
    r"download=True|urlretrieve|fetch_openml": "downloads a dataset",
}

_IMPORT = re.compile(r"^(\s*)import optuna(\.[\w.]+)?(\s+as\s+\w+)?\s*(#.*)?$")
_FROM = re.compile(r"^(\s*)from optuna((?:\.[\w.]+)?)\s+import\s+(.*)$")


def rewrite(source: str) -> tuple[str, int]:
    """`source` with its Optuna imports pointing at hyperlaw.optuna, and how many lines
    changed. `import optuna` becomes `import hyperlaw.optuna as optuna`."""
    lines, changed = [], 0
    for line in source.splitlines(keepends=True):
        body = line.rstrip("\n")
        m = _IMPORT.match(body)
        if m:
            indent, sub, alias, comment = m.group(1), m.group(2) or "", m.group(3), m.group(4)
            if alias:
                new = f"{indent}import hyperlaw.optuna{sub}{alias}"
            elif sub:  # `import optuna.x` binds the name `optuna`
                new = f"{indent}import hyperlaw.optuna{sub}; import hyperlaw.optuna as optuna"
            else:
                new = f"{indent}import hyperlaw.optuna as optuna"
            body, changed = new + (f"  {comment}" if comment else ""), changed + 1
        else:
            m = _FROM.match(body)
            if m:
                body = f"{m.group(1)}from hyperlaw.optuna{m.group(2)} import {m.group(3)}"
                changed += 1
        lines.append(body + ("\n" if line.endswith("\n") else ""))
    return "".join(lines), changed


def optuna_only(source: str) -> str | None:
    """Why the example needs Optuna itself (or the network), or None."""
    reasons = [why for pattern, why in OPTUNA_ONLY.items() if re.search(pattern, source)]
    return "; ".join(reasons) or None


def last_error(text: str) -> str:
    """The last line of a traceback (the exception), or the last line."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    for line in reversed(lines):
        if re.match(r"^[\w.]+(Error|Exception|Exit)\b|^[\w.]+: ", line):
            return line.strip()[:200]
    return lines[-1].strip()[:200] if lines else ""


def run_example(path: Path, timeout: float, rewritten: bool = True) -> dict[str, object]:
    """Copy, rewrite (unless not `rewritten`: the reference run on Optuna) and run one
    example; its outcome."""
    source = path.read_text()
    new, changed = rewrite(source) if rewritten else (source, 0)
    with tempfile.TemporaryDirectory(prefix="optuna-example-") as tmp:
        for sibling in path.parent.iterdir():  # data files the example reads beside it
            if sibling.is_file() and sibling.suffix != ".py":
                shutil.copy(sibling, tmp)
        script = Path(tmp) / path.name
        script.write_text(new)
        env = dict(os.environ, MPLBACKEND="Agg", PYTHONWARNINGS="ignore")
        start = time.perf_counter()
        try:
            proc = subprocess.run([sys.executable, script.name], cwd=tmp, env=env,
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"result": "timeout", "seconds": round(time.perf_counter() - start, 1),
                    "reason": f"did not finish in {timeout:g} s", "changed_lines": changed}
        seconds = round(time.perf_counter() - start, 1)
    ok = proc.returncode == 0
    return {"result": "ok" if ok else "error", "seconds": seconds, "changed_lines": changed,
            "reason": "" if ok else last_error(proc.stderr or proc.stdout)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("examples", type=Path, help="a checkout of optuna/optuna-examples")
    parser.add_argument("--only", nargs="*", default=list(FOLDERS), metavar="FOLDER",
                        help="folders (or folder/file.py) to run")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per example")
    parser.add_argument("--run-all", action="store_true",
                        help="also run examples that use Optuna-only features or downloads")
    parser.add_argument("--reference", action="store_true",
                        help="also run each example unchanged on Optuna (for its time)")
    parser.add_argument("--out", type=Path, help="write the results as JSON")
    args = parser.parse_args()

    paths: list[Path] = []
    for entry in args.only:
        target = args.examples / entry
        paths.extend([target] if target.is_file() else sorted(target.glob("*.py")))
    results: dict[str, dict[str, object]] = {}
    for path in paths:
        name = str(path.relative_to(args.examples))
        why = optuna_only(path.read_text())
        if why and not args.run_all:
            results[name] = {"result": "not run", "seconds": None, "reason": why}
        else:
            results[name] = run_example(path, args.timeout)
            if args.reference:
                optuna = run_example(path, args.timeout, rewritten=False)
                results[name]["optuna"] = f"{optuna['result']} {optuna['seconds']}"
        r = results[name]
        print(f"{name}: {r['result']} {r['seconds'] or ''} {r['reason']} "
              f"{r.get('optuna', '')}", file=sys.stderr, flush=True)
    print("| example | result | seconds | on Optuna | reason |\n|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['result']} | {r['seconds'] or ''} | {r.get('optuna', '')} | "
              f"{r['reason']} |")
    ran = [r for r in results.values() if r["result"] != "not run"]
    print(f"\n{sum(r['result'] == 'ok' for r in ran)} of {len(ran)} run examples succeeded; "
          f"{len(results) - len(ran)} not run (Optuna-only features or downloads).")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
