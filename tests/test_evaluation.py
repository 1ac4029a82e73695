"""Tests for sar_colorizer.evaluation: scoring, aggregation, report files and the grid."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from skimage.color import rgb2lab

from sar_colorizer import evaluation
from sar_colorizer.baselines import BASELINE_NAMES, Baselines
from sar_colorizer.errors import InputError, OutputExistsError
from sar_colorizer.metrics import METRIC_NAMES
from sar_colorizer.report import build_report, format_markdown, write_report


@dataclass(frozen=True)
class _Pair:
    name: str
    split: str | None = None


def _optical_lab(seed: int = 0, shape=(24, 24)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.15, 0.85, (shape[0] // 8, shape[1] // 8, 3))
    return rgb2lab(np.kron(base, np.ones((8, 8, 1))))


def _outputs(name: str, model: dict[str, float], offset: float) -> evaluation.ImageOutputs:
    scores = {"model": dict(model)}
    for index, baseline in enumerate(BASELINE_NAMES):
        scores[baseline] = {metric: value + offset * (index + 1) for metric, value in model.items()}
    return evaluation.ImageOutputs(name=name, metrics=scores)


def _flat_metrics(value: float) -> dict[str, float]:
    return dict.fromkeys(METRIC_NAMES, value)


def test_select_pairs_split_and_limit():
    pairs = [_Pair("a", "train"), _Pair("b", "test"), _Pair("c", "test"), _Pair("d", None)]
    assert [p.name for p in evaluation.select_pairs(pairs)] == ["a", "b", "c", "d"]
    assert [p.name for p in evaluation.select_pairs(pairs, split="test")] == ["b", "c"]
    assert [p.name for p in evaluation.select_pairs(pairs, split="test", limit=1)] == ["b"]
    with pytest.raises(InputError, match="splits present: test, train"):
        evaluation.select_pairs(pairs, split="val")
    with pytest.raises(InputError, match="positive"):
        evaluation.select_pairs(pairs, limit=0)
    with pytest.raises(InputError):
        evaluation.select_pairs([])


def test_score_methods_shares_l_and_reference():
    optical_lab = _optical_lab()
    lightness = np.full(optical_lab.shape[:2], 60.0)
    baselines = Baselines(mean_colour=(2.0, 5.0), linear_a=(1.0, 0.0), linear_b=(3.0, 0.0))
    feature = np.zeros(lightness.shape)
    method_ab = {"model": optical_lab[..., 1:]}
    method_ab.update({name: baselines.predict_ab(name, feature) for name in BASELINE_NAMES})
    scores, rgbs, ref_rgb = evaluation.score_methods(lightness, method_ab, optical_lab)
    # The model that predicts the optical colour exactly reproduces the reference.
    assert scores["model"]["ab_rmse"] == 0.0
    assert np.array_equal(rgbs["model"], ref_rgb)
    assert scores["model"]["q4"] == pytest.approx(1.0)
    assert scores["no_colour"]["chroma_ratio"] == 0.0
    for name in BASELINE_NAMES:
        assert scores[name]["ab_rmse"] > 0
        assert set(scores[name]) == set(METRIC_NAMES)
    # No colour: AB RMSE is the RMS of the optical AB (docs/METRICS.md, "AB RMSE").
    expected = np.sqrt(np.mean(optical_lab[..., 1:] ** 2))
    assert scores["no_colour"]["ab_rmse"] == pytest.approx(expected)


def test_score_methods_mask_hides_nan_colour_at_nodata():
    optical_lab = _optical_lab(1)
    lightness = np.full(optical_lab.shape[:2], 50.0)
    valid = np.ones(lightness.shape, dtype=bool)
    valid[:, :8] = False
    ab = optical_lab[..., 1:].copy()
    ab[:, :8] = np.nan
    scores, _, _ = evaluation.score_methods(lightness, {"model": ab}, optical_lab, valid)
    assert scores["model"]["ab_rmse"] == 0.0
    assert all(np.isfinite(scores["model"][m]) for m in METRIC_NAMES if m != "psnr")


def test_build_report_shape_means_std_and_advantage():
    images = [
        _outputs("one", {**_flat_metrics(1.0), "ab_rmse": 4.0, "psnr": 20.0}, 1.0),
        _outputs("two", {**_flat_metrics(3.0), "ab_rmse": 6.0, "psnr": 22.0}, 1.0),
    ]
    report = build_report(images)
    assert set(report) == {"n_images", "model", "baselines"}
    assert report["n_images"] == 2
    assert set(report["baselines"]) == set(BASELINE_NAMES)
    model = report["model"]
    assert model["ab_rmse"] == pytest.approx(5.0) and model["std"]["ab_rmse"] == pytest.approx(1.0)
    assert [entry["name"] for entry in model["per_image"]] == ["one", "two"]
    for name in BASELINE_NAMES:
        assert [e["name"] for e in report["baselines"][name]["per_image"]] == ["one", "two"]
    # no_colour is worse by 1 on every metric (offset 1): AB RMSE advantage +1, PSNR -1.
    assert model["advantage"]["no_colour"]["ab_rmse"] == pytest.approx(1.0)
    assert model["advantage"]["no_colour"]["psnr"] == pytest.approx(-1.0)
    assert model["advantage"]["linear_regression"]["ab_rmse"] == pytest.approx(3.0)
    assert model["advantage"]["mean_colour"]["images_better_ab_rmse"] == 2


def test_report_files_json_is_strict_and_markdown_has_table(tmp_path: Path):
    images = [
        _outputs("one", {**_flat_metrics(0.5), "psnr": float("inf")}, 0.5),
        _outputs("two", {**_flat_metrics(0.7), "psnr": 30.0}, 0.5),
    ]
    report = build_report(images)
    path = write_report(report, tmp_path / "out")
    text = path.read_text()
    assert "Infinity" not in text and "NaN" not in text
    loaded = json.loads(text)
    assert loaded["model"]["psnr"] == pytest.approx(30.0)  # mean over the finite values
    assert loaded["model"]["per_image"][0]["psnr"] is None
    markdown = (tmp_path / "out" / "report.md").read_text()
    summary, _, images_part = markdown.partition("\n## Images\n")
    table = [line for line in summary.splitlines() if line.startswith("|")]
    assert len(table) == 2 + 1 + len(BASELINE_NAMES)
    assert table[2].startswith("| model |")
    assert sum(line.startswith("- vs ") for line in markdown.splitlines()) == len(BASELINE_NAMES)
    # One row per image: its name, the model's scores and the best baseline's AB RMSE.
    rows = [line for line in images_part.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| image | AB RMSE | CIEDE2000 | PSNR dB | SSIM |")
    assert [row.split(" | ")[0] for row in rows[1:]] == ["| one", "| two"]
    assert rows[1].split(" | ")[1] == "0.50" and rows[1].split(" | ")[3] == "-"  # inf PSNR
    assert not list((tmp_path / "out").glob("*.partial"))


def test_report_md_and_html_show_the_same_advantages_and_confidence_deciles():
    from sar_colorizer.report import advantage_lines, confidence_rows
    from sar_colorizer.report_html import render

    rng = np.random.default_rng(0)
    images = []
    for name in ("one", "two"):
        image = _outputs(name, {**_flat_metrics(1.0), "ab_rmse": 4.0}, 1.0)
        sigma = rng.uniform(1, 20, 500)
        image.confidence = np.stack([sigma, sigma**2, (sigma / 2) ** 2], axis=-1)
        images.append(image)
    report = build_report(images)
    markdown, page = format_markdown(report), render(report, [])
    lines = advantage_lines(report)
    assert len(lines) == len(BASELINE_NAMES)
    for line in lines:
        assert f"- {line}" in markdown
        assert f"<li>{line}</li>" in page
    rows = confidence_rows(report["confidence"])
    assert len(rows) == 10
    for row in rows:
        assert "| " + " | ".join(row) + " |" in markdown
        assert "<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" in page
    assert "id=confidence" in page and "Spearman" in page


def test_write_grid_png(tmp_path: Path):
    rng = np.random.default_rng(2)
    thumbnails = {
        key: rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)
        for key in ("model", "linear_regression", "reference", "optical")
    }
    thumbnails["sar"] = rng.uniform(0, 1, (12, 16))
    images = [
        evaluation.ImageOutputs("a", {}, thumbnails),
        evaluation.ImageOutputs("b", {}, {}),  # not in the grid
        evaluation.ImageOutputs("c", {}, thumbnails),
    ]
    path = evaluation.write_grid(images, tmp_path / "grid.png", "linear_regression")
    assert path is not None and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert evaluation.write_grid(images[1:2], tmp_path / "none.png", "no_colour") is None
    assert not (tmp_path / "none.png").exists()


def test_grid_indices_spread_over_images():
    assert evaluation._grid_indices(10, 4) == {0, 3, 6, 9}
    assert evaluation._grid_indices(2, 4) == {0, 1}
    assert evaluation._grid_indices(5, 0) == set()


def test_evaluate_refuses_existing_report_and_missing_baselines(tmp_path: Path):
    (tmp_path / "report.json").write_text("{}")

    class _Bundle:
        metadata: dict = {}
        path = Path("bundle")

    with pytest.raises(OutputExistsError, match="--overwrite"):
        evaluation.evaluate(_Bundle(), [_Pair("a")], report_dir=tmp_path)
    with pytest.raises(InputError, match="baselines"):
        evaluation.evaluate(_Bundle(), [_Pair("a")], report_dir=tmp_path, overwrite=True)


def _flagged_images() -> list[evaluation.ImageOutputs]:
    """Four images; "cloudy" and "snowy" are flagged and score far worse than the clear ones."""
    images = []
    for name, ab_rmse, flag in (("a", 4.0, False), ("cloudy", 20.0, True),
                                ("b", 6.0, False), ("snowy", 30.0, True)):
        image = _outputs(name, {**_flat_metrics(1.0), "ab_rmse": ab_rmse}, 1.0)
        image.cloud_or_snow = flag
        images.append(image)
    return images


def test_build_report_adds_the_clear_summary_when_some_image_is_flagged():
    images = _flagged_images()
    report = build_report(images)
    # The headline is over every image, as without flags.
    plain = build_report([evaluation.ImageOutputs(i.name, i.metrics) for i in images])
    assert "clear" not in plain
    for method in ("model", "baselines"):
        assert _without_flags(report[method]) == _without_flags(plain[method])
    assert report["n_images"] == 4 and report["model"]["ab_rmse"] == pytest.approx(15.0)
    assert [e["cloud_or_snow"] for e in report["model"]["per_image"]] == [False, True, False, True]
    # The clear summary is the report of the clear images alone.
    clear = report["clear"]
    assert clear["left_out"] == ["cloudy", "snowy"]
    alone = build_report([images[0], images[2]])
    assert {k: clear[k] for k in alone} == alone
    assert clear["n_images"] == 2 and clear["model"]["ab_rmse"] == pytest.approx(5.0)
    assert clear["model"]["beats_no_colour"] == {"images": 2, "of": 2, "fraction": 1.0}

    markdown = format_markdown(report)
    heading = "## Clear references only (2 of 4 pairs; 2 flagged cloud_or_snow left out)"
    head, _, tail = markdown.partition(heading)
    assert tail, markdown
    assert head == format_markdown(plain).partition("\n## Images")[0].rstrip("\n") + "\n\n"
    assert "Left out: cloudy, snowy." in tail
    model_rows = [line for line in tail.splitlines() if line.startswith("| model |")]
    assert len(model_rows) == 1 and "| 5.00 |" in model_rows[0]
    assert "The model beats no colour on 2 of 2 images (100%)." in tail


def _without_flags(summary: dict) -> dict:
    """A summary (or the baselines' dict of summaries) without the per-image flags."""
    if "per_image" not in summary:
        return {name: _without_flags(value) for name, value in summary.items()}
    rows = [{k: v for k, v in row.items() if k != "cloud_or_snow"} for row in summary["per_image"]]
    return {**summary, "per_image": rows}


def test_every_image_flagged_leaves_an_empty_clear_summary():
    images = [image for image in _flagged_images() if image.cloud_or_snow]
    report = build_report(images)
    assert report["clear"]["n_images"] == 0 and report["clear"]["model"]["ab_rmse"] is None
    json.dumps(report, allow_nan=False)
    markdown = format_markdown(report)
    assert "(0 of 2 pairs; 2 flagged cloud_or_snow left out)" in markdown
    assert "no clear reference to score" in markdown


def test_select_pairs_excludes_flagged_pairs_after_the_limit():
    @dataclass(frozen=True)
    class Flagged:
        name: str
        split: str | None = None
        cloud_or_snow: bool = False

    pairs = [Flagged("a"), Flagged("b", cloud_or_snow=True), Flagged("c"), Flagged("d")]
    assert [p.name for p in evaluation.select_pairs(pairs, flagged="exclude")] == ["a", "c", "d"]
    assert [p.name for p in evaluation.select_pairs(pairs, limit=2, flagged="exclude")] == ["a"]
    assert len(evaluation.select_pairs(pairs, flagged="include")) == 4
    with pytest.raises(InputError, match="all 1 selected pair.*--flagged include"):
        evaluation.select_pairs(pairs[1:2], flagged="exclude")
    with pytest.raises(ValueError, match="include, exclude"):
        evaluation.select_pairs(pairs, flagged="drop")


def _eval_and_predict(folder, tmp_path: Path, name: str, **settings) -> tuple[np.ndarray, ...]:
    """The colours eval scores for the folder's pair (its model thumbnail: the whole image, as
    it is smaller than a thumbnail), and those predict writes for its SAR, as ints."""
    import rasterio

    from sar_colorizer.api import load_model
    from sar_colorizer.data.layouts import find_pairs
    from sar_colorizer.inference import colorize_raster

    bundle = load_model()
    pair = find_pairs(folder.root)[0]
    outputs = evaluation.evaluate_pair(
        bundle, evaluation.bundle_baselines(bundle), pair, keep_thumbnails=True, tone="balanced"
    )
    colorize_raster(bundle, pair.sar, tmp_path / f"{name}.tif", progress=False, tone="balanced",
                    **settings)
    with rasterio.open(tmp_path / f"{name}.tif") as src:
        predicted = src.read()[:3].transpose(1, 2, 0).astype(int)
    scored = outputs.thumbnails["model"].astype(int)
    assert scored.shape == predicted.shape
    return scored, predicted


def test_eval_scores_the_colours_after_the_chroma_limit(tmp_path, write_pairs):
    """eval scores the colours predict writes: the model's a*, b* after the chroma limit, not
    before it (on this image the limit moves colours by more than a level)."""
    folder = write_pairs(tmp_path / "pairs", n=1, size=(120, 100), georeferenced=True)
    scored, predicted = _eval_and_predict(folder, tmp_path, "limited")
    _, unlimited = _eval_and_predict(folder, tmp_path, "clipped", chroma_limit=False)
    assert np.abs(unlimited - predicted).max() > 1  # the limit matters here
    assert np.abs(scored - predicted).max() <= 1  # float64 vs the float32 conversion


def test_eval_colours_at_the_pixel_size_of_the_georeference(tmp_path, write_pairs):
    """On a 20 m pair, eval colours as predict does (tiles resampled to the 10 m training
    pixels): its colours differ from those of the same pair at 10 m, and are predict's."""
    import rasterio
    from affine import Affine

    at_10 = write_pairs(tmp_path / "pairs10", n=1, size=(120, 100), georeferenced=True)
    at_20 = write_pairs(tmp_path / "pairs20", n=1, size=(120, 100), georeferenced=True)
    for kind in ("sar", "opt"):
        with rasterio.open(at_20.root / kind / "000.tif", "r+") as dataset:
            dataset.transform = Affine(20, 0, 600000, 0, -20, 4800000)
    scored_10, _ = _eval_and_predict(at_10, tmp_path, "at10")
    scored_20, predicted_20 = _eval_and_predict(at_20, tmp_path, "at20")
    assert np.abs(scored_20 - scored_10).max() > 1  # the pixel size reaches the network
    assert np.abs(scored_20 - predicted_20).max() <= 1
