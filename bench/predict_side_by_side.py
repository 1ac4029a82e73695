#!/usr/bin/env python3
"""Interleaved ``sarcolor predict`` runs of two checkouts on one scene: speed before / after.

On a shared machine the speed drifts by tens of percent over minutes, so two versions are only
comparable run side by side. This runs ``python -m sar_colorizer predict SCENE OUT`` alternately
with ``PYTHONPATH`` set to each checkout and prints, per run, the Mpx/s that predict logs (inside
the command), the process's wall time and its CPU seconds (user + system, all threads: the work
done, which the machine's load barely changes).

    python bench/predict_side_by_side.py --before ../main \
        --scene /tmp/sarcolor-bench/T14RNT_sar_db.tif

(``python bench/predict_bench.py`` builds that scene.)
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, required=True, help="the other checkout")
    parser.add_argument("--after", type=Path, default=REPO, help="default: this checkout")
    parser.add_argument("--scene", type=Path, default=Path("/tmp/sarcolor-bench/T14RNT_sar_db.tif"))
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("extra", nargs="*", help="more predict options (after --)")
    args = parser.parse_args()
    if not args.scene.exists():
        sys.exit(f"{args.scene} not found; python bench/predict_bench.py builds it")
    totals: dict[str, list[float]] = {"before": [], "after": []}
    with tempfile.TemporaryDirectory() as folder:
        for run in range(args.runs):
            for label, tree in (("before", args.before), ("after", args.after)):
                out = Path(folder) / f"{label}.tif"
                out.unlink(missing_ok=True)
                env = dict(os.environ, PYTHONPATH=str(tree.resolve()))
                command = [sys.executable, "-m", "sar_colorizer", "predict"]
                command += [str(args.scene), str(out)]
                start = resource.getrusage(resource.RUSAGE_CHILDREN)
                t0 = time.perf_counter()
                done = subprocess.run(command + args.extra, env=env, capture_output=True, text=True)
                wall = time.perf_counter() - t0
                end = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu = end.ru_utime - start.ru_utime + end.ru_stime - start.ru_stime
                if done.returncode:
                    sys.exit(f"{label}: predict failed:\n{done.stderr[-2000:]}")
                found = re.search(r"in ([0-9.]+) s, ([0-9.]+) Mpx/s", done.stderr)
                speed = float(found.group(2)) if found else float("nan")
                totals[label].append(cpu)
                print(
                    f"{label:6s} run {run + 1}: {speed:.2f} Mpx/s in predict, wall {wall:.1f} s, "
                    f"CPU {cpu:.1f} s, load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
    before, after = (min(totals[k]) for k in ("before", "after"))
    print(f"\nleast CPU seconds: before {before:.1f}, after {after:.1f} ({after / before:.2f}x)")
    print(shlex.join(["python", "bench/predict_side_by_side.py", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
