"""sar_colorizer.batch: many inputs to outputs, skips and refusals before the model loads,
one line per failure, and counts; without the command line."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest
import rasterio

from sar_colorizer.batch import (
    BatchSummary,
    Job,
    PredictOptions,
    check_job,
    colour_batch,
    expand_inputs,
    plan_batch,
    plan_inputs,
)
from sar_colorizer.errors import InputError, OutputExistsError

FAST = PredictOptions(tile_size=64, overlap=16)


def _db(shape: tuple[int, int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (10 * np.log10(0.05 * rng.gamma(4.0, 0.25, size=shape))).astype(np.float32)


@pytest.fixture
def scenes(make_geotiff, tmp_path) -> Path:
    """Three small dB scenes and one file that is not a raster, in scenes/."""
    for index in range(3):
        make_geotiff(f"scenes/s{index}_VH.tif", _db((40, 50), index))
    (tmp_path / "scenes" / "broken.tif").write_text("not a raster")
    return tmp_path / "scenes"


def test_gdal_virtual_paths_and_urls_pass_through_untouched(tmp_path):
    remote = [
        "/vsicurl/https://example.com/s1/a_VH.tif",
        "s3://bucket/scenes/b_VH.tif",
        "/vsis3/bucket/scenes/c*_VH.tif",  # no globbing of remote names
    ]
    local = tmp_path / "d_VH.tif"
    local.write_bytes(b"")
    inputs, unmatched = expand_inputs([*remote, str(local), remote[0]])
    assert inputs == [*remote, local] and unmatched == []
    assert isinstance(inputs[0], str) and isinstance(inputs[-1], Path)


def test_plan_names_outputs_and_counts_what_cannot_run(scenes, tmp_path, caplog):
    other = scenes.parent / "other"
    other.mkdir()
    (other / "s1_VH.tif").write_bytes((scenes / "s1_VH.tif").read_bytes())  # the same stem
    out = tmp_path / "out"
    with caplog.at_level("INFO", logger="sar_colorizer.batch"):
        plan = plan_batch(
            [str(scenes / "s*.tif"), str(other / "s1_VH.tif"), str(tmp_path / "nothing*.tif")],
            out, suffix="_colour.tif", ab_dir=tmp_path / "ab", confidence_dir=tmp_path / "conf",
        )
    assert [Path(job.input).name for job in plan.jobs] == ["s0_VH.tif", "s1_VH.tif", "s2_VH.tif"]
    first = plan.jobs[0]
    assert first.output == out / "s0_VH_colour.tif"
    assert first.ab_output == tmp_path / "ab" / "s0_VH_ab.tif"
    assert first.confidence == tmp_path / "conf" / "s0_VH_confidence.tif"
    assert first.quicklook is None and first.outputs() == [
        first.output, first.ab_output, first.confidence]
    # The pattern that matched nothing and the second s1_VH fail; nothing is written yet.
    assert plan.summary.failed == 2 and plan.summary.done == 0
    assert plan.summary.errors[0] == f"{tmp_path / 'nothing*.tif'}: no such file (no file " \
        "matches the pattern)"
    assert "would also be written for" in plan.summary.errors[1]
    assert caplog.text.count("ERROR") == 2
    assert len(plan.inputs) == 4 and not out.exists()


def test_a_plan_of_expanded_inputs_runs_the_files_seen(scenes, tmp_path, make_geotiff):
    """The command line expands its patterns once: what it checked is what runs, even when a
    matching file appears before the plan is made."""
    pattern = str(scenes / "s*.tif")
    seen, unmatched = expand_inputs([pattern, str(tmp_path / "nothing*.tif")])
    make_geotiff("scenes/s9_VH.tif", _db((40, 50), 9))  # matches the pattern from now on
    plan = plan_inputs(seen, unmatched, tmp_path / "out", suffix=".tif")
    assert [Path(job.input).name for job in plan.jobs] == ["s0_VH.tif", "s1_VH.tif", "s2_VH.tif"]
    assert plan.inputs == seen and plan.summary.failed == 1
    assert "nothing*.tif: no such file" in plan.summary.errors[0]
    assert len(plan_batch([pattern], tmp_path / "out").jobs) == 4  # a new expansion sees it


def test_skip_existing_skips_only_existing_outputs(scenes, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "s1_VH.png").write_bytes(b"")
    plan = plan_batch([str(scenes / "s*.tif")], out, skip_existing=True)
    assert [Path(job.input).stem for job in plan.jobs] == ["s0_VH", "s2_VH"]
    assert plan.summary.skipped == 1 and plan.summary.line() == "0 done, 1 skipped, 0 failed"


def test_check_job_refuses_inputs_foreign_rasters_and_unknown_formats(scenes, tmp_path):
    source = scenes / "s0_VH.tif"
    with pytest.raises(OutputExistsError, match="is an input of this run"):
        check_job(Job(source, source), overwrite=True, force=True)
    foreign = scenes / "s1_VH.tif"  # SAR data that sarcolor did not write
    with pytest.raises(OutputExistsError, match="--overwrite --force"):
        check_job(Job(source, foreign), overwrite=True)
    check_job(Job(source, foreign), overwrite=True, force=True)  # allowed, and nothing written
    with pytest.raises(InputError):
        check_job(Job(source, tmp_path / "colour.xyz"), overwrite=False)
    with pytest.raises(InputError):
        check_job(Job(scenes / "missing.tif", tmp_path / "colour.png"), overwrite=False)


def test_colour_batch_colours_keeps_going_and_counts(scenes, tmp_path, tiny_bundle):
    out = tmp_path / "out"
    plan = plan_batch([str(scenes / "*.tif")], out, suffix=".tif")
    summary = colour_batch(plan, tiny_bundle, FAST, progress=False)
    assert summary is plan.summary
    assert summary.line() == "3 done, 0 skipped, 1 failed"
    assert len(summary.errors) == 1 and "broken.tif" in summary.errors[0]
    assert [result.output for result in summary.results] == [
        out / f"s{index}_VH.tif" for index in range(3)]
    for index in range(3):
        with rasterio.open(scenes / f"s{index}_VH.tif") as src, \
                rasterio.open(out / f"s{index}_VH.tif") as dst:
            assert dst.transform == src.transform and dst.crs == src.crs and dst.count == 4
    # Run again: every output exists, and sarcolor wrote it, so only overwrite replaces it.
    again = colour_batch(plan_batch([str(scenes / "s*.tif")], out, suffix=".tif"), tiny_bundle,
                         FAST, progress=False)
    assert again.line() == "0 done, 0 skipped, 3 failed"
    assert all("pass --overwrite" in error for error in again.errors)


def test_an_empty_plan_never_loads_the_model(tmp_path):
    plan = plan_batch([str(tmp_path / "none*.tif")], tmp_path / "out")
    summary = colour_batch(plan, tmp_path / "no_such_model", FAST)
    assert summary.line() == "0 done, 0 skipped, 1 failed"


def test_options_have_the_defaults_of_colorize_raster():
    from sar_colorizer.inference import colorize_raster
    from sar_colorizer.inference.options import ColourOptions

    parameters = inspect.signature(colorize_raster).parameters
    raster_options = PredictOptions().raster_options()
    assert raster_options.pop("options") == ColourOptions()  # one home for the defaults
    for name, value in raster_options.items():
        assert parameters[name].default == value, name
    assert PredictOptions(tiles_per_call=4).raster_options()["options"].tiles_per_call == 4


def test_summary_line_counts_an_interruption():
    summary = BatchSummary(done=2, skipped=1, failed=0, not_done=3)
    assert summary.line() == "2 done, 1 skipped, 0 failed, 3 not done (interrupted)"


def test_every_executor_makes_the_same_checks(scenes, tmp_path, tiny_bundle):
    """A batch on a pool of workers refuses what the serial batch refuses: a raster sarcolor
    did not write is replaced only with overwrite and force."""
    from concurrent.futures import ThreadPoolExecutor

    out = tmp_path / "out"
    out.mkdir()
    foreign = out / "s0_VH.tif"
    with rasterio.open(foreign, "w", driver="GTiff", width=8, height=8, count=1,
                       dtype="uint8") as dst:
        dst.write(np.zeros((1, 8, 8), np.uint8))
    before = foreign.read_bytes()
    options = PredictOptions(tile_size=64, overlap=16, overwrite=True)
    for executor in (None, ThreadPoolExecutor(2)):
        plan = plan_batch([str(scenes / "s0_VH.tif")], out, suffix=".tif")
        summary = colour_batch(plan, tiny_bundle, options, progress=False, executor=executor)
        assert summary.line() == "0 done, 0 skipped, 1 failed", executor
        assert "sarcolor did not write it" in summary.errors[0]
        assert foreign.read_bytes() == before
    plan = plan_batch([str(scenes / "s0_VH.tif")], out, suffix=".tif")
    summary = colour_batch(plan, str(tiny_bundle), options, force=True, progress=False,
                           executor=ThreadPoolExecutor(2))
    assert summary.line() == "1 done, 0 skipped, 0 failed" and foreign.read_bytes() != before
