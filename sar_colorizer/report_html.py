"""``report.html``: one self-contained page to look at an evaluation.

Everything is inline: CSS, a few lines of JavaScript, and the images as base64 PNG data URIs
(thumbnails of at most :data:`~sar_colorizer.evaluation.GRID_THUMBNAIL` px), so the page opens
from a file, offline, and can be mailed or attached to a ticket. It holds:

- the metric table, the model beside the three baselines (best value per metric in bold), and
  the model against each baseline (as in ``report.md``);
- when some pair's optical reference is flagged ``cloud_or_snow``, the same table over the clear
  references only;
- for a model with a confidence head, the AB error by decile of the predicted sigma;
- one row per image, sortable by any error column (click a header), with its name shortened
  (ellipsis in the middle, full name in the tooltip) and SAR | colorised | reference | optical,
  plus a slider that swipes between the SAR and the colorised image.
"""

from __future__ import annotations

import base64
import html
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPORT_HTML = "report.html"

#: Per-image columns of the image table: (metric, label).
IMAGE_COLUMNS = (
    ("ab_rmse", "AB RMSE"),
    ("ciede2000", "CIEDE2000"),
    ("psnr", "PSNR dB"),
    ("ssim", "SSIM"),
)
#: Picture columns: (thumbnail key, label).
PICTURES = (("sar", "SAR"), ("model", "colorised"), ("reference", "reference"), ("optical", "optical"))


def shorten(name: str, width: int = 32) -> str:
    """``name`` cut to ``width`` characters with an ellipsis in the middle (both ends kept:
    scene names differ at their start and their tile number at the end)."""
    if len(name) <= width:
        return name
    head = width // 2
    tail = width - 1 - head
    return f"{name[:head]}…{name[-tail:]}" if tail > 0 else name[: width - 1] + "…"


def png_data_uri(image: np.ndarray) -> str:
    """A PNG data URI of a uint8 RGB ``(h, w, 3)`` or a float grey ``(h, w)`` image in [0, 1]."""
    import cv2

    array = np.asarray(image)
    if array.ndim == 2:
        array = np.round(np.clip(np.nan_to_num(array), 0.0, 1.0) * 255).astype(np.uint8)
    else:
        array = cv2.cvtColor(np.ascontiguousarray(array.astype(np.uint8)), cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".png", array)
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 array
        raise ValueError("could not encode a thumbnail")
    return "data:image/png;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")


@dataclass
class ImageEntry:
    """What the page keeps of one image: its name, scores, encoded thumbnails and whether its
    optical reference is flagged ``cloud_or_snow``."""

    name: str
    metrics: dict[str, dict[str, float]]
    pictures: dict[str, str]
    cloud_or_snow: bool = False


class HtmlCollector:
    """Keeps each evaluated image's thumbnails as small PNGs (not arrays) for the page."""

    def __init__(self) -> None:
        self.entries: list[ImageEntry] = []

    def add(self, image: Any) -> None:
        """Add an :class:`~sar_colorizer.report.ImageOutputs` (with thumbnails)."""
        pictures = {key: png_data_uri(image.thumbnails[key]) for key, _ in PICTURES
                    if key in image.thumbnails}
        self.entries.append(ImageEntry(image.name, image.metrics, pictures,
                                       bool(getattr(image, "cloud_or_snow", False))))


def _metric_table(summary: dict[str, Any], table_id: str = "metrics") -> str:
    """The metric table of a summary (``{"model", "baselines"}``: the report or its ``clear``),
    one row per metric (:func:`sar_colorizer.report.metric_table`), the best method marked."""
    from sar_colorizer.report import metric_table

    table = metric_table(summary)
    head = "".join(f"<th>{html.escape(name.replace('_', ' '))}</th>" for name in table.methods)
    rows = []
    for i, label in enumerate(table.labels):
        cells = "".join(
            f"<td{' class=best' if j == table.best[i] else ''}>{table.cell(i, j, '–')}</td>"
            for j in range(len(table.methods))
        )
        rows.append(f"<tr><th scope=row>{html.escape(label)}</th>{cells}</tr>")
    return (
        f"<table id={table_id} class=metrics><thead><tr><th>metric</th>" + head
        + "</tr></thead><tbody>"
        + "".join(rows) + "</tbody></table>"
    )


def _image_rows(entries: list[ImageEntry], baseline: str) -> str:
    from sar_colorizer.report import MODEL_KEY, format_value

    rows = []
    for index, entry in enumerate(entries):
        model = entry.metrics[MODEL_KEY]
        base = entry.metrics.get(baseline, {})
        title = entry.name + (" (optical flagged cloud_or_snow)" if entry.cloud_or_snow else "")
        cells = [
            f"<td class=name title=\"{html.escape(title)}\">"
            f"<span>{html.escape(shorten(entry.name))}</span></td>"
        ]
        for metric, _ in IMAGE_COLUMNS:
            value = model.get(metric)
            sort = "" if value is None or not np.isfinite(value) else f"{float(value):.6g}"
            cells.append(f"<td data-v=\"{sort}\">{format_value(value, metric, '–')}</td>")
        value = base.get("ab_rmse")
        sort = "" if value is None or not np.isfinite(value) else f"{float(value):.6g}"
        cells.append(f"<td data-v=\"{sort}\">{format_value(value, 'ab_rmse', '–')}</td>")
        figures = []
        for key, label in PICTURES:
            if key in entry.pictures:
                figures.append(
                    f"<figure><img src=\"{entry.pictures[key]}\" alt=\"{label}\">"
                    f"<figcaption>{label}</figcaption></figure>"
                )
        if "sar" in entry.pictures and "model" in entry.pictures:
            # The swipe's two images take their sources from the figures beside it (set by the
            # page's script), so each thumbnail is stored once.
            figures.append(
                "<figure class=swipe><div class=stack>"
                "<img data-from=\"colorised\" alt=\"colorised (swipe)\">"
                "<img class=top data-from=\"SAR\" alt=\"SAR (swipe)\">"
                "</div><input type=range min=0 max=100 value=50 aria-label=\"swipe SAR / colour\">"
                "<figcaption>SAR ⟷ colour</figcaption></figure>"
            )
        cells.append(f"<td class=pics>{''.join(figures)}</td>")
        flag = " class=flagged" if entry.cloud_or_snow else ""
        rows.append(f"<tr data-i=\"{index}\"{flag}>{''.join(cells)}</tr>")
    return "".join(rows)


_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;max-width:1500px}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.5em}
table{border-collapse:collapse}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right;vertical-align:middle}
thead th{background:#f2f2f2}
table.metrics th[scope=row]{text-align:left}
td.best{font-weight:bold}
#images{table-layout:fixed;width:100%}
#images th.sortable{cursor:pointer;user-select:none}
#images th.sortable:after{content:" ⇅";color:#999}
#images th[aria-sort=ascending]:after{content:" ▲";color:#222}
#images th[aria-sort=descending]:after{content:" ▼";color:#222}
#images col.name{width:13em}#images col.num{width:5.6em}
#images thead th{text-align:left;font-size:12px}
td.name{text-align:left;overflow:hidden}
tr.flagged td.name{background:#eef2f7;font-style:italic}
td.name span{display:block;overflow:hidden;white-space:nowrap;text-overflow:ellipsis}
td.pics{text-align:left;white-space:nowrap;overflow-x:auto}
figure{display:inline-block;margin:2px 3px;vertical-align:top;text-align:center}
figure img{width:128px;height:128px;object-fit:contain;display:block;background:#000;image-rendering:pixelated}
figcaption{font-size:11px;color:#555}
.stack{position:relative;width:128px;height:128px}
.stack img{position:absolute;left:0;top:0}
.stack img.top{clip-path:inset(0 50% 0 0)}
.swipe input{width:128px;margin:0;height:12px}
.note{color:#555}
"""

_JS = """
document.querySelectorAll('.swipe').forEach(function (fig) {
  fig.querySelectorAll('img[data-from]').forEach(function (img) {
    img.src = fig.parentNode.querySelector('img[alt="' + img.dataset.from + '"]').src;
  });
  var top = fig.querySelector('img.top'), range = fig.querySelector('input');
  function update() { top.style.clipPath = 'inset(0 ' + (100 - range.value) + '% 0 0)'; }
  range.addEventListener('input', update); update();
});
(function () {
  var table = document.getElementById('images'), body = table.tBodies[0];
  table.querySelectorAll('th.sortable').forEach(function (th) {
    th.addEventListener('click', function () {
      var column = th.cellIndex, ascending = th.getAttribute('aria-sort') !== 'ascending';
      table.querySelectorAll('th.sortable').forEach(function (o) { o.removeAttribute('aria-sort'); });
      th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[column].dataset.v, y = b.cells[column].dataset.v;
        if (x === '' || y === '') { return (x === '') - (y === ''); }
        return ascending ? x - y : y - x;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
})();
"""


def _clear_section(report: dict[str, Any]) -> str:
    """The metric table over the clear references only, when some pair is flagged."""
    from sar_colorizer.report import CLEAR_KEY, clear_title

    clear = report.get(CLEAR_KEY)
    if not clear:
        return ""
    heading = f"<h2>{html.escape(clear_title(report))}</h2>"
    names = html.escape(", ".join(clear["left_out"]))
    note = (f"<p class=note>The optical image of these pairs is covered by cloud or seasonal "
            f"snow, so it does not show the surface colour: {names}.</p>")
    if not clear["n_images"]:
        return heading + note + "<p class=note>Every pair is flagged: no clear reference to score.</p>"
    return heading + note + _metric_table(clear, "clear-metrics") + _advantages(clear)


def _headline_note(report: dict[str, Any]) -> str:
    """The pairs left out by ``flagged="exclude"``."""
    parts = []
    left_out = report.get("left_out") or []
    if left_out:
        parts.append(f"<p class=note>{len(left_out)} more pair(s) flagged cloud_or_snow left "
                     f"out: {html.escape(', '.join(left_out))}.</p>")
    return "".join(parts)


def _advantages(summary: dict[str, Any]) -> str:
    """The model against each baseline and its no-colour count, as in ``report.md``."""
    from sar_colorizer.report import ADVANTAGE_TITLE, MODEL_KEY, advantage_lines, beats_text

    items = "".join(f"<li>{html.escape(line)}</li>" for line in advantage_lines(summary))
    beats = summary[MODEL_KEY].get("beats_no_colour")
    beats_line = f"<p>{html.escape(beats_text(beats))}</p>" if beats and beats["of"] else ""
    return f"<p>{html.escape(ADVANTAGE_TITLE)}:</p><ul class=advantages>{items}</ul>{beats_line}"


def _confidence_section(report: dict[str, Any]) -> str:
    """The AB error by decile of the predicted sigma (models with a confidence head)."""
    from sar_colorizer.report import CONFIDENCE_COLUMNS, confidence_caption, confidence_rows

    table = report.get("confidence")
    if not table:
        return ""
    head = "".join(f"<th>{html.escape(label)}</th>" for label in CONFIDENCE_COLUMNS)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
                   for row in confidence_rows(table))
    return (f"<h2>Confidence</h2><p>{html.escape(confidence_caption(table))}:</p>"
            f"<table id=confidence><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")


def render(report: dict[str, Any], entries: list[ImageEntry], title: str = "Colorization evaluation") -> str:
    """The page as a string (see the module docstring)."""
    from sar_colorizer.report import best_baseline

    baseline = best_baseline(report)
    settings = report.get("settings") or {}
    settings_text = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in settings.items())
    headers = "".join(
        f"<th class=sortable data-metric={metric}>{label}</th>" for metric, label in IMAGE_COLUMNS
    )
    headers += f"<th class=sortable>{html.escape(baseline.replace('_', ' '))} AB RMSE</th>"
    columns = "<col class=name>" + "<col class=num>" * (len(IMAGE_COLUMNS) + 1) + "<col>"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title><style>{_CSS}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p class=note>{report['n_images']} image(s){'; ' + html.escape(settings_text) if settings_text else ''}.
Every method's output and the reference share the L derived from the SAR; the reference takes
its colour (A, B) from the optical image, so only colour errors count.</p>
<h2>Metrics, model beside the baselines</h2>
{_metric_table(report)}
{_advantages(report)}
{_headline_note(report)}{_clear_section(report)}
{_confidence_section(report)}
<h2>Images</h2>
<p class=note>Click a column header to sort by it. Drag the slider to swipe between the SAR and
the colorised image. The last number column is the best baseline ({html.escape(baseline.replace('_', ' '))}).</p>
<table id=images><colgroup>{columns}</colgroup>
<thead><tr><th>image</th>{headers}<th>SAR | colorised | reference | optical | swipe</th></tr></thead>
<tbody>{_image_rows(entries, baseline)}</tbody></table>
<script>{_JS}</script>
</body></html>
"""


def write_html(
    report: dict[str, Any], entries: list[ImageEntry], path: str | os.PathLike[str]
) -> Path:
    """Write ``report.html`` atomically."""
    from sar_colorizer.io.writer import atomic_path

    destination = Path(path)
    with atomic_path(destination, overwrite=True) as temporary:
        temporary.write_text(render(report, entries), encoding="utf-8")
    return destination
