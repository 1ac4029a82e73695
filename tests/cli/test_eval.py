"""``sarcolor eval`` end to end: a tiny untrained bundle on tiny synthetic PNG pairs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from sar_colorizer.cli import cli

METRICS = ("psnr", "ssim", "ab_rmse", "ciede2000", "nrmse", "sam", "q4", "chroma_ratio")
BASELINES = ("no_colour", "mean_colour", "linear_regression")
SPLITS = {"p0": "train", "p1": "test", "p2": "test"}


@pytest.fixture
def pairs_dir(tmp_path: Path, write_pairs) -> Path:
    """Three 48 x 40 pairs whose optical colour follows the SAR, with a pairs.csv of splits."""
    return write_pairs(tmp_path / "pairs", size=(48, 40), names=list(SPLITS), splits=SPLITS).root


def test_eval_writes_report_grid_and_prints_table(
    tiny_bundle: Path, pairs_dir: Path, tmp_path: Path
):
    report_dir = tmp_path / "report"
    result = CliRunner().invoke(
        cli,
        [
            "-q",
            "eval",
            str(tiny_bundle),
            str(pairs_dir),
            "--report",
            str(report_dir),
            "--split",
            "test",
            "--grid",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "| model |" in result.stdout and "| linear regression |" in result.stdout

    report = json.loads((report_dir / "report.json").read_text())
    assert set(report) == {"n_images", "model", "baselines", "settings"}
    # The bundle's default tile (512) with predict's default overlap (an eighth of it, 64) is
    # shrunk to fit the 48 x 40 images: one tile holding the image and a 32-px margin on each
    # side, and at least twice the overlap: 128 px. That is what the network ran on, and what
    # the report records.
    assert report["settings"] == {
        "tile_size": 128, "overlap": 64, "tone": "balanced", "optical_convention": "as-is"
    }
    assert report["n_images"] == 2
    assert set(report["baselines"]) == set(BASELINES)
    test_names = sorted(name for name, split in SPLITS.items() if split == "test")
    methods = {"model": report["model"], **report["baselines"]}
    for method, summary in methods.items():
        for metric in METRICS:
            assert np.isfinite(summary[metric]), (method, metric)
        # Every method was scored on the same images.
        assert sorted(entry["name"] for entry in summary["per_image"]) == test_names
    assert report["baselines"]["no_colour"]["chroma_ratio"] == 0.0
    assert report["baselines"]["mean_colour"]["chroma_ratio"] > 0

    # The advantage is computed from those same per-image scores.
    for baseline in BASELINES:
        model_rmse = np.mean([e["ab_rmse"] for e in report["model"]["per_image"]])
        base_rmse = np.mean([e["ab_rmse"] for e in report["baselines"][baseline]["per_image"]])
        advantage = report["model"]["advantage"][baseline]["ab_rmse"]
        assert advantage == pytest.approx(base_rmse - model_rmse)

    markdown = (report_dir / "report.md").read_text()
    assert markdown.count("- vs ") == 3
    assert (report_dir / "grid.png").read_bytes()[:4] == b"\x89PNG"


def test_eval_refuses_existing_report_unless_overwrite(
    tiny_bundle: Path, pairs_dir: Path, tmp_path: Path
):
    report_dir = tmp_path / "report"
    report_dir.mkdir()
    (report_dir / "report.json").write_text("{}")
    args = ["-q", "eval", str(tiny_bundle), str(pairs_dir), "--report", str(report_dir)]
    refused = CliRunner().invoke(cli, args)
    assert refused.exit_code != 0
    assert "--overwrite" in refused.output
    assert (report_dir / "report.json").read_text() == "{}"

    replaced = CliRunner().invoke(cli, args + ["--overwrite", "--limit", "1", "--grid", "0", "--tile-size", "16"])
    assert replaced.exit_code == 0, replaced.output
    report = json.loads((report_dir / "report.json").read_text())
    assert report["n_images"] == 1
    assert report["settings"]["tile_size"] == 16 and report["settings"]["overlap"] == 2
    assert not (report_dir / "grid.png").exists()


def test_eval_unknown_split_is_a_clean_error(pairs_dir: Path, tmp_path: Path):
    # Fails before any model is loaded, so the bundle need not exist.
    result = CliRunner().invoke(
        cli, ["eval", "default", str(pairs_dir), "--report", str(tmp_path / "r"), "--split", "val"]
    )
    assert result.exit_code == 3  # InputError
    assert "split 'val'" in result.output and "test, train" in result.output
    assert "Traceback" not in result.output


def test_eval_help_lists_options_without_importing_tensorflow():
    code = (
        "import sys\nfrom sar_colorizer.cli import cli\n"
        "try:\n    cli(['eval', '--help'], prog_name='sarcolor')\nexcept SystemExit:\n    pass\n"
        "print('TF' if 'tensorflow' in sys.modules or 'keras' in sys.modules else 'no TF')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    for option in ("--report", "--split", "--limit", "--overwrite", "--grid"):
        assert option in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "no TF"


def test_eval_scores_the_validation_images_of_a_preprocessed_folder(
    tiny_bundle: Path, pairs_dir: Path, tmp_path: Path
):
    # The README's "sarcolor eval my_model chips/ --split val": preprocess lists its sources
    # with their split in chips/pairs.csv.
    manifest = pairs_dir / "pairs.csv"
    manifest.write_text(manifest.read_text().replace("p1.png,test", "p1.png,val"))
    chips = tmp_path / "chips"
    prepared = CliRunner().invoke(
        cli,
        ["-q", "preprocess", str(pairs_dir), str(chips), "--chip-size", "16",
         "--band-names", "VH"],
    )
    assert prepared.exit_code == 0, prepared.output
    stats = json.loads((chips / "stats.json").read_text())
    val_names = sorted(n for n, s in stats["sources"].items() if s["split"] == "val")
    assert val_names == ["p1"]

    report_dir = tmp_path / "val_report"
    result = CliRunner().invoke(
        cli,
        ["-q", "eval", str(tiny_bundle), str(chips), "--split", "val",
         "--report", str(report_dir), "--grid", "0"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((report_dir / "report.json").read_text())
    assert sorted(e["name"] for e in report["model"]["per_image"]) == val_names


def test_reference_follows_the_bundles_optical_convention(
    tiny_bundle: Path, pairs_dir: Path, tmp_path: Path
):
    """The tiny bundle records no convention (an old bundle): references are as-is; the option
    overrides it, and the colour error against the reference changes with it."""
    from sar_colorizer.bundle import read_metadata

    assert "optical_convention" not in read_metadata(tiny_bundle)
    scores = {}
    for flag in (None, "as-is", "dos"):
        report_dir = tmp_path / f"r-{flag}"
        args = ["-q", "eval", str(tiny_bundle), str(pairs_dir), "--report", str(report_dir),
                "--grid", "0"]
        result = CliRunner().invoke(cli, args + (["--optical-convention", flag] if flag else []))
        assert result.exit_code == 0, result.output
        report = json.loads((report_dir / "report.json").read_text())
        assert report["settings"]["optical_convention"] == (flag or "as-is")
        scores[flag] = report["baselines"]["no_colour"]["ab_rmse"]
    assert scores[None] == scores["as-is"] != scores["dos"]


def test_python_and_command_line_evaluations_agree_by_default(
    tiny_bundle: Path, pairs_dir: Path, tmp_path: Path
):
    """sc.evaluate() and `sarcolor eval` colour with the same defaults (predict's): the same
    settings and the same scores out of the box."""
    import sar_colorizer as sc

    from_python = sc.evaluate(pairs_dir, tmp_path / "python", str(tiny_bundle))
    result = CliRunner().invoke(
        cli, ["-q", "eval", str(tiny_bundle), str(pairs_dir), "--report", str(tmp_path / "cli")],
    )
    assert result.exit_code == 0, result.output
    from_cli = json.loads((tmp_path / "cli" / "report.json").read_text())
    assert from_python["settings"] == from_cli["settings"]
    assert from_python["settings"]["tone"] == "balanced"  # predict's default
    assert from_python["model"]["ab_rmse"] == from_cli["model"]["ab_rmse"]


def test_a_pair_of_mismatched_sizes_is_refused_before_any_work(
    tiny_bundle: Path, write_pairs, tmp_path: Path, monkeypatch
):
    """Every pair's header is checked before the model loads: one unusable pair among good ones
    fails the run in a second, naming it, instead of after scoring the others (the bad pair
    is the last one: a run that scores as it goes would load the model and score two)."""
    import rasterio

    from sar_colorizer import bundle, evaluation

    pairs = write_pairs(tmp_path / "pairs", n=3, size=(48, 40)).root
    with rasterio.open(pairs / "opt" / "002.png") as src:
        profile, rgb = src.profile, src.read()
    profile.update(width=30)
    with rasterio.open(pairs / "opt" / "002.png", "w", **profile) as dst:
        dst.write(rgb[:, :, :30])

    work: list[str] = []  # the real functions run; the test only records that they were called

    def recorded(name, function):
        def call(*args, **kwargs):
            work.append(name)
            return function(*args, **kwargs)
        return call

    monkeypatch.setattr(bundle, "load_bundle", recorded("load_bundle", bundle.load_bundle))
    monkeypatch.setattr(evaluation, "evaluate_pair",
                        recorded("evaluate_pair", evaluation.evaluate_pair))
    report = tmp_path / "report"
    result = CliRunner().invoke(cli, ["eval", str(tiny_bundle), str(pairs), "--report", str(report)])
    assert result.exit_code == 3, result.output  # InputError
    assert work == [], work  # neither the model loaded nor a pair scored
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "002" in lines[0] and "40" in lines[0] and "30" in lines[0], lines
    assert "1 of 3 pair(s) cannot be used (nothing was done): pair 002: " in lines[0], lines
    assert not report.exists()
    # the same pairs, made usable, run through the recorded functions
    for path in pairs.rglob("002.*"):
        path.unlink()
    result = CliRunner().invoke(cli, ["eval", str(tiny_bundle), str(pairs), "--report", str(report)])
    assert result.exit_code == 0, result.output
    assert work == ["load_bundle", "evaluate_pair", "evaluate_pair"], work
