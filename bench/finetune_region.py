#!/usr/bin/env python3
"""Colours for one region: fine-tune the shipped model on some acquisitions, score on others.

The path of "Colours for your region" in the README (``sarcolor pairs`` -> ``preprocess`` ->
``train --init default`` -> ``eval``), run offline on the BigEarthNet ``train`` patches of
``../shared/data/bigearthnet-configilm`` (never its ``test`` split). Version-1 patch names carry
the Sentinel-2 datatake but not the tile, so the region here is the set of patches of datatakes
starting 10:10 UTC, Sentinel-2 relative orbit 22 over central Europe (``--region``, a list of
name prefixes):

* fine-tuned on the patches of some acquisitions (``--train``),
* scored on patches of *other acquisitions* of the region (``--heldout``), and on a patch of a
  training acquisition that no model saw (``--unseen``: a patch the shipped model held out for
  validation, left out of the fine-tune too).

Prints a markdown table per scored set (shipped vs fine-tuned model vs each bundle's baselines)
and every command with its time. Note: the shipped model trained on 26 of the 30 BigEarthNet
``train`` patches, the held-out acquisitions among them; its scores there are on images it saw.

    .venv/bin/python bench/finetune_region.py --work /tmp/sarcolor-region
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from finetune_bigearthnet import Runner, markdown_table, read_report  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "bigearthnet-configilm"
TRAIN = ("S2A_MSIL2A_20170613T101031", "S2B_MSIL2A_20170817T101019",
         "S2B_MSIL2A_20170906T101019_76_61", "S2B_MSIL2A_20170906T101019_82_41",
         "S2B_MSIL2A_20170906T101020_74_19")
HELDOUT = ("S2B_MSIL2A_20171016T101009", "S2A_MSIL2A_20180419T101031")
UNSEEN = ("S2B_MSIL2A_20170906T101019_27_42",)


def _parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--work", type=Path, default=Path("/tmp/sarcolor-region"))
    parser.add_argument("--train", default=",".join(TRAIN),
                        help="comma-separated patch name prefixes to fine-tune on")
    parser.add_argument("--heldout", default=",".join(HELDOUT),
                        help="prefixes of the held-out acquisitions")
    parser.add_argument("--unseen", default=",".join(UNSEEN),
                        help="prefixes of patches of training acquisitions seen by no model")
    parser.add_argument("--val", default="",
                        help="prefixes of fine-tune patches labelled val (validation chips: the "
                             "best epoch, the shrink k and the novelty weight are chosen on them)")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    return parser.parse_args(argv)


def _select(rows: list[dict[str, str]], prefixes: str) -> list[dict[str, str]]:
    wanted = [p for p in prefixes.split(",") if p]
    chosen = [r for r in rows if any(Path(r["optical"]).stem.startswith(p) for p in wanted)]
    if not chosen:
        sys.exit(f"no train patch starts with any of {wanted}")
    return chosen


def _manifest(path: Path, rows: list[dict[str, str]], data: Path, split: str,
              val: frozenset[str] = frozenset()) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sar", "optical", "split"])
        for row in rows:
            stem = Path(row["optical"]).stem
            label = "val" if any(stem.startswith(p) for p in val) else split
            writer.writerow([data / row["sar"], data / row["optical"], label])
    return path


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    start = time.perf_counter()
    data = args.data.resolve()
    if not (data / "pairs.csv").is_file():
        sys.exit(f"{data}: no pairs.csv (the shared BigEarthNet data is beside the repository)")
    with open(data / "pairs.csv", newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["split"] == "train"]  # never `test`
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    sets = {"fine-tune": _select(rows, args.train), "held-out acquisitions":
            _select(rows, args.heldout), "unseen patch": _select(rows, args.unseen)}
    names = {label: sorted(Path(r["optical"]).stem for r in chosen)
             for label, chosen in sets.items()}
    for label, chosen in names.items():
        print(f"{label}: {', '.join(chosen)}", flush=True)
    overlap = set(names["fine-tune"]) & (set(names["held-out acquisitions"])
                                         | set(names["unseen patch"]))
    if overlap:
        sys.exit(f"patches both fine-tuned on and scored: {sorted(overlap)}")

    val = frozenset(p for p in args.val.split(",") if p)
    finetune = _manifest(work / "finetune.csv", sets["fine-tune"], data, "train", val)
    scored = {"heldout": _manifest(work / "heldout.csv", sets["held-out acquisitions"], data, ""),
              "unseen": _manifest(work / "unseen.csv", sets["unseen patch"], data, "")}
    chips, model = work / "chips", work / "finetuned"
    run = Runner(args.threads)
    run("preprocess", finetune, chips, "--bands", "VH", "--chip-size", "64", "--stride", "32",
        "--val-fraction", "0", "--seed", str(args.seed), "--overwrite")

    def evaluate(bundle: str | Path, tag: str) -> None:
        for key, manifest in scored.items():
            run("eval", bundle, manifest, "--bands", "VH", "--report", work / f"eval_{key}_{tag}",
                "--overwrite")
            # The colour network alone: without muting toward grey where it is unsure.
            run("eval", bundle, manifest, "--bands", "VH", "--no-mute-unsure", "--report",
                work / f"eval_{key}_{tag}_unmuted", "--overwrite")

    evaluate("default", "shipped")
    shutil.rmtree(model.with_name(model.name + ".work"), ignore_errors=True)  # a fresh run
    run("train", chips, model, "--init", "default", "--epochs", str(args.epochs),
        "--learning-rate", str(args.learning_rate), "--batch-size", str(args.batch_size),
        "--crop-size", "64", "--seed", str(args.seed), "--overwrite")
    evaluate(model, "tuned")

    bundle = json.loads((model / "bundle.json").read_text())
    training = bundle["training"]
    for key, label in (("heldout", "held-out acquisitions"), ("unseen", "unseen patch")):
        print(f"\n## {label}: {', '.join(names[label])}\n")
        table = markdown_table(read_report(work / f"eval_{key}_shipped"),
                               read_report(work / f"eval_{key}_tuned"))
        lines = (table.replace("default model (before)", "shipped model")
                 .replace("fine-tuned model (after)", "fine-tuned model")
                 .replace("default bundle's", "shipped bundle's")).splitlines()
        unmuted = markdown_table(read_report(work / f"eval_{key}_shipped_unmuted"),
                                 read_report(work / f"eval_{key}_tuned_unmuted")).splitlines()
        lines[4:4] = [unmuted[2].replace("default model (before)", "shipped, --no-mute-unsure"),
                      unmuted[3].replace("fine-tuned model (after)",
                                         "fine-tuned, --no-mute-unsure")]
        print("\n".join(lines))
    n_val = sum(any(name.startswith(p) for p in val) for name in names["fine-tune"])
    print(f"\nFine-tuned on {len(names['fine-tune']) - n_val} patches, {n_val} for validation ({training['epochs_run']} epochs, "
          f"{training['seconds']:.0f} s, learning rate {args.learning_rate}, batch "
          f"{args.batch_size}, 64 px crops of 64 px chips, stride 32, VH). Muting toward grey: "
          f"k = {bundle.get('confidence', {}).get('shrink_k')} (the shipped model's 0.125 was "
          "chosen on its validation images; with no validation chips a fine-tune keeps the "
          "default 1.0).")
    print(f"\nCommands (times on {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}):\n")
    print("```")
    for command, seconds in run.commands:
        print(f"{command}    # {seconds:.0f} s")
    print("```")
    print(f"\nMade by: {shlex.join([Path(sys.executable).name, *sys.argv])}  "
          f"({time.perf_counter() - start:.0f} s in all)")


if __name__ == "__main__":
    main()
