"""``report.html``: self-contained, rendered by headless Chromium without errors."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from sar_colorizer.cli import cli
from sar_colorizer.evaluation import grid_label
from sar_colorizer.report_html import shorten

sys.path.insert(0, str(Path(__file__).parent))
from chromium import Page, find_chromium  # noqa: E402

LONG = "S1A_IW_GRDH_1SDV_20170613T165043_33UUP_87_48_and_a_very_long_fragment_name_{}"
NAMES = [LONG.format(0), LONG.format(1), "p2"]


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory: pytest.TempPathFactory, write_pairs) -> Path:
    """Three 96 x 80 pairs (two with very long names), scored by the shipped model."""
    root = tmp_path_factory.mktemp("report")
    pairs = write_pairs(root / "pairs", size=(96, 80), names=NAMES).root
    result = CliRunner().invoke(cli, ["-q", "eval", "default", str(pairs), "--report", str(root / "r")])
    assert result.exit_code == 0, result.output
    return root / "r"


@pytest.fixture(scope="module")
def chromium() -> str:
    binary = find_chromium()
    if binary is None:
        pytest.skip("no chromium binary on PATH (Debian: apt-get install chromium)")
    pytest.importorskip("websockets", reason="the page test needs websockets (the report-test extra)")
    return binary


def test_names_are_shortened_in_the_middle():
    assert shorten("short") == "short"
    short = shorten(NAMES[0], 32)
    assert len(short) == 32 and short.startswith("S1A_IW_GRDH") and short.endswith("name_0")
    for name in NAMES:
        lines = grid_label(name).split("\n")
        assert len(lines) <= 2 and all(len(line) <= 26 for line in lines)
    assert grid_label("a" * 40) == "a" * 26 + "\n" + "a" * 14


def test_report_html_is_self_contained(report_dir):
    text = (report_dir / "report.html").read_text(encoding="utf-8")
    sources = re.findall(r'(?:src|href)="([^"]*)"', text)
    assert len(sources) == 4 * len(NAMES)  # SAR, colorised, reference, optical (swipe: copies)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "http://" not in text and "https://" not in text and "@import" not in text
    for name in NAMES:
        assert f'title="{name}"' in text


def test_report_renders_in_headless_chromium(report_dir, chromium, tmp_path):
    with Page(chromium, width=1400, height=1000) as page:
        page.open(report_dir / "report.html")
        state = page.evaluate(
            """(() => {
            const imgs = Array.from(document.images);
            const names = Array.from(document.querySelectorAll('#images td.name')).map(td => {
              const span = td.querySelector('span'), a = span.getBoundingClientRect();
              const cell = td.getBoundingClientRect(), next = td.nextElementSibling.getBoundingClientRect();
              return {inside: a.right <= cell.right + 0.5 && a.left >= cell.left - 0.5,
                      before_next: cell.right <= next.left + 0.5, height: a.height,
                      text: span.textContent};
            });
            return {n_images: imgs.length,
                    loaded: imgs.filter(i => i.complete && i.naturalWidth > 0).length,
                    metric_rows: document.querySelectorAll('#metrics tbody tr').length,
                    metric_cols: document.querySelectorAll('#metrics thead th').length,
                    image_rows: document.querySelectorAll('#images tbody tr').length,
                    names: names};
            })()"""
        )
        assert state["n_images"] == 6 * len(NAMES)  # 4 pictures + the swipe's two and state["loaded"] == state["n_images"]
        assert state["metric_rows"] >= 8 and state["metric_cols"] == 5  # metric + 4 methods
        assert state["image_rows"] == len(NAMES)
        heights = {round(n["height"]) for n in state["names"]}
        assert len(heights) == 1  # one line each: nothing wraps into the next row
        assert all(n["inside"] and n["before_next"] for n in state["names"])

        # Sorting by AB RMSE: ascending, then descending.
        order = """(() => { document.querySelector('#images th.sortable').click();
            return Array.from(document.querySelectorAll('#images tbody tr'))
                        .map(r => parseFloat(r.cells[1].dataset.v)); })()"""
        ascending = page.evaluate(order)
        assert ascending == sorted(ascending) and len(ascending) == len(NAMES)
        assert page.evaluate(order) == sorted(ascending, reverse=True)

        # The swipe slider moves the SAR's clip edge.
        clip = page.evaluate(
            """(() => { const fig = document.querySelector('.swipe'), r = fig.querySelector('input');
            r.value = 20; r.dispatchEvent(new Event('input'));
            return fig.querySelector('img.top').style.clipPath; })()"""
        )
        assert clip.replace(" ", "") == "inset(0px80%0px0px)" or "80%" in clip

        shot = page.screenshot(tmp_path / "report.png")
        assert page.errors() == []
    picture = cv2.imread(str(shot))
    assert picture is not None and picture.shape[:2] == (1000, 1400)
    assert picture.std() > 10  # not a blank page


def test_flagged_report_renders_the_clear_table(write_pairs, tiny_bundle, chromium, tmp_path):
    """A pair flagged cloud_or_snow: a second metric table over the clear pairs, the flagged row
    marked, and the page still renders without errors."""
    pairs = write_pairs(tmp_path / "p", size=(48, 40), names=["a", "b", "c"],
                        cloud_or_snow=["0", "1", "0"]).root
    report = tmp_path / "r"
    result = CliRunner().invoke(
        cli, ["-q", "eval", str(tiny_bundle), str(pairs), "--grid", "0", "--report", str(report)]
    )
    assert result.exit_code == 0, result.output
    with Page(chromium) as page:
        page.open(report / "report.html")
        state = page.evaluate(
            """(() => ({
            tables: document.querySelectorAll('table.metrics').length,
            clear_rows: document.querySelectorAll('#clear-metrics tbody tr').length,
            clear_cols: document.querySelectorAll('#clear-metrics thead th').length,
            flagged: Array.from(document.querySelectorAll('#images tr.flagged td.name'))
                          .map(td => td.textContent),
            headings: Array.from(document.querySelectorAll('h2')).map(h => h.textContent)}))()"""
        )
        assert page.errors() == []
    assert state["tables"] == 2 and state["clear_rows"] >= 8 and state["clear_cols"] == 5
    assert state["flagged"] == ["b"]
    assert "Clear references only (2 of 3 pairs; 1 flagged cloud_or_snow left out)" in state["headings"]


def test_real_texas_report_renders(shared_data, chromium, tmp_path):
    pairs = shared_data / "s1s2-la-texas" / "pairs.csv"
    if not pairs.exists():
        pytest.skip(f"{pairs} is absent")
    report = tmp_path / "r"
    result = CliRunner().invoke(
        cli, ["-q", "eval", "default", str(pairs), "--split", "test", "--limit", "2",
              "--report", str(report)]
    )
    assert result.exit_code == 0, result.output
    with Page(chromium) as page:
        page.open(report / "report.html")
        loaded = page.evaluate(
            "Array.from(document.images).filter(i => i.complete && i.naturalWidth > 0).length"
        )
        assert loaded == 12
        assert page.errors() == []


def test_grid_row_labels_stay_beside_their_row_and_inside_the_figure(tmp_path, monkeypatch):
    """grid.png: long names used to run over the neighbouring rows and off the figure."""
    from matplotlib.figure import Figure

    from sar_colorizer.evaluation import ImageOutputs, write_grid

    figures: list[Figure] = []
    original = Figure.savefig

    def keep(self, *args, **kwargs):
        figures.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    rng = np.random.default_rng(0)
    colour = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    thumbnails = {"sar": rng.uniform(0, 1, (64, 64)), "model": colour, "mean_colour": colour,
                  "reference": colour, "optical": colour}
    names = [LONG.format(i) * 2 for i in range(3)]  # 150+ characters
    images = [ImageOutputs(name, {}, dict(thumbnails)) for name in names]
    write_grid(images, tmp_path / "grid.png", "mean_colour")
    figure = figures[-1]
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    renderer = canvas.get_renderer()
    frame = figure.bbox
    axes = [ax for ax in figure.axes if ax.get_ylabel()]
    assert len(axes) == 3
    for ax in axes:
        label = ax.yaxis.label.get_window_extent(renderer)
        row = ax.get_window_extent(renderer)
        assert label.y0 >= row.y0 - 1 and label.y1 <= row.y1 + 1  # beside its own row only
        assert label.x0 >= frame.x0 and label.y0 >= frame.y0 and label.y1 <= frame.y1
