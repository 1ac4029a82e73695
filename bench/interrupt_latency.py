"""How fast `sarcolor predict` stops on a signal, and what it leaves behind.

Runs `sarcolor -q predict SCENE OUT.tif --cog` in a subprocess and sends the signal when a
phase starts: `import` (2 s after the start, while TensorFlow is imported), `tiles` (when the
first temporary file appears: tiles are being written) or `cog` (when the COG conversion's
temporary appears). Prints the exit status, the seconds from the signal to the exit, and the
files left in the output folder.

    python bench/interrupt_latency.py SCENE.tif --signal SIGINT --phase cog --runs 3

A scene: python ../shared/tools/make_scene.py T14RNT /tmp/scene --kind sar
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PHASE_FILES = {"tiles": ".sarcolor-", "cog": ".partial.tif"}


def one_run(scene: Path, signum: int, phase: str) -> tuple[int, float, list[str]]:
    out_dir = Path(tempfile.mkdtemp(prefix="latency-"))
    command = [sys.executable, "-m", "sar_colorizer", "-q", "predict", str(scene),
               str(out_dir / "out.tif"), "--cog"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    started = time.monotonic()
    while process.poll() is None:
        if phase == "import" and time.monotonic() - started > 2.0:
            break
        if phase != "import" and any(PHASE_FILES[phase] in name for name in os.listdir(out_dir)):
            break
        time.sleep(0.01)
    sent = time.monotonic()
    process.send_signal(signum)
    process.wait()
    return process.returncode, time.monotonic() - sent, sorted(os.listdir(out_dir))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scene", type=Path)
    parser.add_argument("--signal", default="SIGINT", choices=["SIGINT", "SIGTERM", "SIGHUP"])
    parser.add_argument("--phase", default="cog", choices=["import", "tiles", "cog"])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    signum = getattr(signal, args.signal)
    print(f"$ python bench/interrupt_latency.py {args.scene} --signal {args.signal} "
          f"--phase {args.phase} --runs {args.runs}")
    for run in range(args.runs):
        status, seconds, left = one_run(args.scene, signum, args.phase)
        print(f"run {run + 1}: exit {status} ({128 + signum} expected) {seconds:.2f} s after "
              f"the signal; left in the output folder: {left or 'nothing'}")


if __name__ == "__main__":
    main()
