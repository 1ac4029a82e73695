"""``sarcolor eval`` end to end: a tiny untrained bundle on tiny synthetic PNG pairs."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from sar_colorizer.cli import cli

METRICS = ("psnr", "ssim", "ab_rmse", "ciede2000", "nrmse", "sam", "q4", "chroma_ratio")
BASELINES = ("no_colour", "mean_colour", "linear_regression")
SPLITS = {"p0": "train", "p1": "test", "p2": "test"}


def _write_pairs(folder: Path) -> Path:
    """Three 48x40 pairs: SAR brighter where the optical image is redder; a pairs.csv manifest."""
    rng = np.random.default_rng(0)
    (folder / "sar").mkdir(parents=True)
    (folder / "opt").mkdir()
    rows = []
    for index, (name, split) in enumerate(SPLITS.items()):
        field = np.kron(rng.uniform(0, 1, (6, 5)), np.ones((8, 8)))
        speckle = rng.exponential(1.0, field.shape)
        sar = np.clip((0.05 + field) * speckle * 120, 0, 255).astype(np.uint8)
        rgb = np.stack([60 + 150 * field, 90 + 40 * (1 - field), 70 + 20 * index + 0 * field], -1)
        cv2.imwrite(str(folder / "sar" / f"{name}.png"), sar)
        cv2.imwrite(str(folder / "opt" / f"{name}.png"), rgb[..., ::-1].astype(np.uint8))
        rows.append({"sar": f"sar/{name}.png", "optical": f"opt/{name}.png", "split": split})
    with open(folder / "pairs.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["sar", "optical", "split"])
        writer.writeheader()
        writer.writerows(rows)
    return folder


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("sar_colorizer.sar.speckle")
    from sar_colorizer._tf import import_keras
    from sar_colorizer.bundle import save_bundle
    from sar_colorizer.nets.unet import ColorizationUNet

    keras = import_keras()
    keras.utils.set_random_seed(0)
    model = ColorizationUNet(input_channels=1, depth=2, base_filters=4, downsample=2)
    metadata = {
        "bands": ["VH"],
        "normalization": {"method": "percentile", "percentile": 99.0},
        "speckle_filter": {"name": "boxcar", "window": 3, "looks": 1.0},
        "tone": {"method": "matched", "l_quantiles": list(np.linspace(5.0, 95.0, 101))},
        "baselines": {
            "mean_colour": [8.0, 12.0],
            "linear_regression": {"a": [-5.0, 30.0], "b": [20.0, -10.0]},
        },
        "training": {"note": "untrained, for tests"},
    }
    return save_bundle(tmp_path_factory.mktemp("bundle") / "tiny", model, metadata)


@pytest.fixture
def pairs_dir(tmp_path: Path) -> Path:
    return _write_pairs(tmp_path / "pairs")


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
    # The bundle's default tile and predict's default overlap (an eighth of the tile).
    assert report["settings"] == {
        "tile_size": 512, "overlap": 64, "tone": "balanced", "optical_convention": "as-is"
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
