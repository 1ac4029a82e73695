"""``sarcolor eval`` with a confidence head: error by confidence decile, beats-no-colour count."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from sar_colorizer.cli import cli
from sar_colorizer.confidence import error_by_decile, sample_errors
from sar_colorizer.errors import InputError


def test_deciles_on_a_constructed_case():
    """Pixels whose error grows with their sigma: each decile's RMSE is known exactly."""
    rng = np.random.default_rng(0)
    sigma = rng.permutation(np.arange(1, 1001, dtype=np.float64))  # 1..1000, shuffled
    mean_error = np.square(sigma / 10)  # the network's error: RMSE = sigma / 10 per pixel
    output_error = np.full(1000, 4.0)  # the output's: 2 everywhere
    table = error_by_decile(np.stack([sigma, output_error, mean_error], axis=-1))
    rows = table["deciles"]
    assert [row["decile"] for row in rows] == list(range(1, 11))
    assert all(row["n_pixels"] == 100 for row in rows)
    for number, row in enumerate(rows):
        values = np.arange(100 * number + 1, 100 * number + 101, dtype=np.float64)
        assert row["sigma_min"] == values[0] and row["sigma_max"] == values[-1]
        assert row["predicted_sigma"] == pytest.approx(np.sqrt(np.mean(values**2)))
        assert row["ab_rmse_mean"] == pytest.approx(np.sqrt(np.mean((values / 10) ** 2)))
        assert row["ab_rmse"] == pytest.approx(2.0)
    assert table["spearman"] == pytest.approx(1.0)
    assert table["ab_rmse_ratio_last_first"] == pytest.approx(
        rows[-1]["ab_rmse_mean"] / rows[0]["ab_rmse_mean"])
    # A sigma unrelated to the error: a flat table, no rank correlation to speak of.
    flat = error_by_decile(np.stack([sigma, output_error, np.full(1000, 9.0)], axis=-1))
    assert flat["spearman"] is None  # undefined for a constant error
    assert {round(row["ab_rmse_mean"], 9) for row in flat["deciles"]} == {3.0}
    unrelated = error_by_decile(np.stack([sigma, output_error, rng.random(1000)], axis=-1))
    assert abs(unrelated["spearman"]) < 0.1
    with pytest.raises(InputError, match="at least 10 pixels"):
        error_by_decile(np.zeros((5, 3)))


def test_sample_errors_uses_valid_pixels_and_the_eval_convention():
    sigma = np.array([[1.0, 2.0], [np.nan, 4.0]], dtype=np.float32)
    reference = np.zeros((2, 2, 2))
    output = np.array([[[3.0, 4.0], [1.0, 1.0]], [[9.0, 9.0], [0.0, 2.0]]])
    mean = 2 * output
    valid = np.array([[True, False], [True, True]])
    samples = sample_errors(sigma, output, mean, reference, valid)
    # (0, 1) is invalid, (1, 0) has no sigma (nodata): two pixels remain.
    np.testing.assert_allclose(samples[:, 0], [1.0, 4.0])
    np.testing.assert_allclose(samples[:, 1], [12.5, 2.0])  # mean over a*, b* of the square
    np.testing.assert_allclose(samples[:, 2], [50.0, 8.0])
    assert len(sample_errors(np.ones((50, 50)), np.zeros((50, 50, 2)), np.zeros((50, 50, 2)),
                             np.zeros((50, 50, 2)), np.ones((50, 50), bool), max_pixels=100)) == 100


@pytest.mark.parametrize("confidence_head", [True, False])
def test_eval_reports_deciles_and_wins_over_no_colour(
    tmp_path, confidence_head, make_bundle, write_pairs
):
    bundle = make_bundle(confidence_head=confidence_head)
    pairs = write_pairs(tmp_path / "pairs", 3, (48, 40), splits=["test"] * 3).root
    report_dir = tmp_path / "report"
    result = CliRunner().invoke(cli, ["-q", "eval", str(bundle), str(pairs),
                                      "--report", str(report_dir), "--tile-size", "32"])
    assert result.exit_code == 0, result.output
    report = json.loads((report_dir / "report.json").read_text())
    model_report = report["model"]
    wins = sum(mine["ab_rmse"] < theirs["ab_rmse"] for mine, theirs in zip(
        model_report["per_image"], report["baselines"]["no_colour"]["per_image"], strict=True))
    assert model_report["beats_no_colour"] == {"images": wins, "of": 3, "fraction": wins / 3}
    assert model_report["advantage"]["no_colour"]["images_better_ab_rmse"] == wins  # kept
    assert "beats no colour on" in (report_dir / "report.md").read_text()
    if not confidence_head:
        assert "confidence" not in report
        assert not (report_dir / "confidence_deciles.png").exists()
        return
    assert report["settings"]["mute_unsure"] is True and report["settings"]["shrink_k"] == 1.0
    table = report["confidence"]
    assert len(table["deciles"]) == 10
    assert table["n_pixels"] == 3 * 48 * 40
    sigmas = [row["predicted_sigma"] for row in table["deciles"]]
    assert sigmas == sorted(sigmas)
    assert (report_dir / "confidence_deciles.png").stat().st_size > 0
    assert "AB error by decile" in (report_dir / "report.md").read_text()


@pytest.mark.slow
def test_readme_confidence_numbers_for_the_committed_samples(samples_dir, tmp_path):
    """The README's "Confidence" section quotes what ``eval`` measures on the committed
    BigEarthNet samples: the rank correlation of sigma with the error, and the AB RMSE of the
    most and least confident tenth of the pixels."""
    import re
    from pathlib import Path

    from sar_colorizer.api import evaluate

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("## Confidence"):]
    row = re.search(r"\| committed BigEarthNet samples[^|]*\| (\d+) \| (-?[\d.]+) \| "
                    r"([\d.]+) \| ([\d.]+) \|", section)
    assert row, "the README's confidence table has no row for the committed samples"
    report = evaluate(samples_dir / "bigearthnet-s1-s2", tmp_path / "report", "default",
                      progress=False)
    table = report["confidence"]
    assert int(row[1]) == table["n_pixels"]
    assert float(row[2]) == round(table["spearman"], 2)
    assert float(row[3]) == round(table["deciles"][0]["ab_rmse_mean"], 2)
    assert float(row[4]) == round(table["deciles"][-1]["ab_rmse_mean"], 2)
