"""``sarcolor eval`` with a manifest whose ``cloud_or_snow`` column flags some optical references:
the headline over every pair, a second summary over the clear ones, ``--flagged exclude``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from sar_colorizer.cli import cli

#: Five pairs, all test; the second and the fourth have a cloudy or snowy optical image.
FLAGS = {"p0": "0", "p1": "1", "p2": "", "p3": "yes", "p4": "false"}
FLAGGED = ["p1", "p3"]
CLEAR = ["p0", "p2", "p4"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory, write_pairs) -> dict[str, Path]:
    """The same five pairs with the flag column (``flagged``) and without it (``plain``), and a
    folder holding only the three unflagged pairs' files (``clear``)."""
    root = tmp_path_factory.mktemp("flagged")
    flagged = write_pairs(root / "flagged", size=(48, 40), names=list(FLAGS),
                          splits=["test"] * len(FLAGS), cloud_or_snow=FLAGS).root
    plain = root / "plain"
    shutil.copytree(flagged, plain)
    manifest = (plain / "pairs.csv").read_text().splitlines()
    (plain / "pairs.csv").write_text(
        "\n".join(line.rsplit(",", 1)[0] for line in manifest) + "\n"
    )
    clear = root / "clear"
    for name in CLEAR:
        for kind in ("sar", "opt"):
            (clear / kind).mkdir(parents=True, exist_ok=True)
            shutil.copy(flagged / kind / f"{name}.png", clear / kind / f"{name}.png")
    return {"flagged": flagged, "plain": plain, "clear": clear}


def _eval(bundle: Path, pairs: Path, report: Path, *options: str) -> dict[str, Any]:
    result = CliRunner().invoke(
        cli, ["-q", "eval", str(bundle), str(pairs), "--report", str(report), "--grid", "0",
              *options]
    )
    assert result.exit_code == 0, result.output
    return json.loads((report / "report.json").read_text())


def _scores(report: dict[str, Any]) -> dict[str, Any]:
    return {key: report[key] for key in ("n_images", "model", "baselines")}


@pytest.fixture(scope="module")
def reports(tiny_bundle: Path, folders: dict[str, Path], tmp_path_factory) -> dict[str, Path]:
    """Report folders of one eval on each folder (and ``--flagged exclude`` on the flagged one)."""
    root = tmp_path_factory.mktemp("reports")
    runs = {"flagged": ("flagged",), "plain": ("plain",), "clear": ("clear",),
            "exclude": ("flagged", "--flagged", "exclude")}
    for label, (folder, *options) in runs.items():
        _eval(tiny_bundle, folders[folder], root / label, *options)
    return {label: root / label for label in runs}


def _load(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "report.json").read_text())


def _without_flags(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_flags(v) for k, v in value.items() if k != "cloud_or_snow"}
    if isinstance(value, list):
        return [_without_flags(v) for v in value]
    return value


def test_clear_summary_equals_an_eval_on_the_clear_pairs_alone(reports):
    report, alone = _load(reports["flagged"]), _load(reports["clear"])
    clear = report["clear"]
    assert clear["left_out"] == FLAGGED
    assert _scores(clear) == _scores(alone)  # the same numbers, to the last bit
    assert [e["name"] for e in clear["model"]["per_image"]] == CLEAR
    assert "clear" not in alone

    markdown = (reports["flagged"] / "report.md").read_text()
    heading = "## Clear references only (3 of 5 pairs; 2 flagged cloud_or_snow left out)"
    assert heading in markdown
    tail = markdown.split(heading)[1].partition("\n## Images")[0]
    alone_md = (reports["clear"] / "report.md").read_text().partition("\n## Images")[0]
    table = [line for line in alone_md.splitlines() if line.startswith("| ")]
    assert [line for line in tail.splitlines() if line.startswith("| ")] == table
    assert "Left out: p1, p3." in tail
    assert "The model beats no colour on" in tail

    page = (reports["flagged"] / "report.html").read_text(encoding="utf-8")
    assert "Clear references only (3 of 5 pairs; 2 flagged cloud_or_snow left out)" in page
    assert page.count("<table id=clear-metrics") == 1
    assert page.count("<tr data-i=") == 5 and page.count("class=flagged>") == 2
    assert 'title="p1 (optical flagged cloud_or_snow)"' in page


def test_headline_is_over_every_pair_and_unchanged_by_the_column(reports):
    report, plain = _load(reports["flagged"]), _load(reports["plain"])
    assert report["n_images"] == 5
    assert _without_flags(_scores(report)) == _without_flags(_scores(plain))
    assert report["settings"] == plain["settings"]
    flags = {e["name"]: e["cloud_or_snow"] for e in report["model"]["per_image"]}
    assert flags == {name: name in FLAGGED for name in FLAGS}
    for summary in report["baselines"].values():
        assert [e["cloud_or_snow"] for e in summary["per_image"]] == list(flags.values())

    # Without a flagged pair, the report has no clear summary and reads as before.
    assert set(plain) == {"n_images", "model", "baselines", "settings"}
    assert not any(e["cloud_or_snow"] for e in plain["model"]["per_image"])
    markdown = (reports["flagged"] / "report.md").read_text()
    plain_md = (reports["plain"] / "report.md").read_text()
    assert "Clear references" not in plain_md
    assert markdown.startswith(plain_md.partition("\n## Images")[0].rstrip("\n"))
    assert "clear-metrics" not in (reports["plain"] / "report.html").read_text(encoding="utf-8")


def test_flagged_exclude_scores_the_clear_pairs_only(reports):
    excluded, included = _load(reports["exclude"]), _load(reports["flagged"])
    assert _scores(excluded) == _scores(included["clear"]) == _scores(_load(reports["clear"]))
    assert excluded["left_out"] == FLAGGED and "clear" not in excluded
    assert excluded["settings"]["flagged"] == "exclude"
    markdown = (reports["exclude"] / "report.md").read_text()
    assert markdown.splitlines()[2].startswith(
        "3 image(s) (2 more flagged cloud_or_snow left out: p1, p3).")
    page = (reports["exclude"] / "report.html").read_text(encoding="utf-8")
    assert page.count("<tr data-i=") == 3 and "2 more pair(s) flagged cloud_or_snow" in page


def test_flagged_exclude_with_every_pair_flagged_fails_before_loading_a_model(
    folders, tmp_path: Path
):
    only_flagged = tmp_path / "only_flagged.csv"
    only_flagged.write_text(
        "sar,optical,cloud_or_snow\n"
        f"{folders['flagged']}/sar/p1.png,{folders['flagged']}/opt/p1.png,1\n"
    )
    result = CliRunner().invoke(
        cli, ["-q", "eval", str(tmp_path / "no_bundle"), str(only_flagged), "--flagged", "exclude",
              "--report", str(tmp_path / "r")]
    )
    assert result.exit_code == 3, result.output  # InputError, before the bundle is looked for
    assert "all 1 selected pair(s) are flagged cloud_or_snow" in result.output
    assert "Traceback" not in result.output


def test_bad_flag_value_is_a_one_line_input_error(folders, tmp_path: Path):
    bad = tmp_path / "bad"
    shutil.copytree(folders["flagged"], bad)
    manifest = bad / "pairs.csv"
    manifest.write_text(manifest.read_text().replace("p3.png,test,yes", "p3.png,test,cloudy"))
    result = CliRunner().invoke(
        cli, ["-q", "eval", "default", str(bad), "--report", str(tmp_path / "r")]
    )
    assert result.exit_code == 3
    message = result.output.strip()
    assert "\n" not in message
    assert str(manifest) in message and "line 5" in message and "column cloud_or_snow" in message
