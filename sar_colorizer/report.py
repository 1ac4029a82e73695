"""The evaluation report: per-image scores aggregated into ``report.json``, and its markdown.

:func:`build_report` turns the :class:`ImageOutputs` of every image into the report structure
(see :mod:`sar_colorizer.evaluation` for its keys); :func:`format_markdown` and
:mod:`sar_colorizer.report_html` render that one structure, with the labels and decimals
defined here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sar_colorizer.baselines import BASELINE_NAMES
from sar_colorizer.io.writer import atomic_path
from sar_colorizer.metrics import METRIC_GOALS, METRIC_NAMES, improvement

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
MODEL_KEY = "model"
#: Report key of the summary over the pairs whose optical reference is not flagged.
CLEAR_KEY = "clear"

METRIC_LABELS = {
    "psnr": "PSNR dB",
    "ssim": "SSIM",
    "ab_rmse": "AB RMSE",
    "ciede2000": "CIEDE2000",
    "nrmse": "NRMSE",
    "sam": "SAM deg",
    "q4": "Q4",
    "chroma_ratio": "chroma ratio",
    "colourfulness_ratio": "colourfulness ratio",
}
METRIC_DECIMALS = {
    "psnr": 2,
    "ssim": 3,
    "ab_rmse": 2,
    "ciede2000": 2,
    "nrmse": 3,
    "sam": 2,
    "q4": 3,
    "chroma_ratio": 3,
    "colourfulness_ratio": 3,
}


#: How each metric's goal is shown beside its label.
GOAL_ARROWS = {"max": "↑", "min": "↓", "one": "→1"}


def format_value(value: float | None, metric: str, missing: str = "-") -> str:
    """A metric's value with its decimals (:data:`METRIC_DECIMALS`); ``missing`` for None or
    a non-finite value."""
    if value is None or not np.isfinite(float(value)):
        return missing
    return f"{float(value):.{METRIC_DECIMALS[metric]}f}"


@dataclass(frozen=True)
class MetricTable:
    """The metric table of a summary, as every report shows it (markdown, HTML).

    Attributes:
        methods: The model, then the baselines.
        metrics: :data:`~sar_colorizer.metrics.METRIC_NAMES`.
        labels: Each metric's label with its goal (``"PSNR dB ↑"``).
        values: ``values[i][j]``: metric ``i`` of method ``j`` (None where undefined).
        best: Per metric, the index of the best method (None where no value is defined).
    """

    methods: tuple[str, ...]
    metrics: tuple[str, ...]
    labels: tuple[str, ...]
    values: tuple[tuple[float | None, ...], ...]
    best: tuple[int | None, ...]

    def cell(self, metric: int, method: int, missing: str = "-") -> str:
        """The formatted value of metric ``metric`` for method ``method``."""
        return format_value(self.values[metric][method], self.metrics[metric], missing)


def metric_table(summary: dict[str, Any]) -> MetricTable:
    """The :class:`MetricTable` of a summary (``{"model", "baselines"}``: the report or its
    ``clear`` part)."""
    methods = (MODEL_KEY, *BASELINE_NAMES)
    scores = [summary[MODEL_KEY]] + [summary["baselines"][name] for name in BASELINE_NAMES]
    values, best = [], []
    for metric in METRIC_NAMES:
        row = tuple(score.get(metric) for score in scores)
        goal = METRIC_GOALS[metric]
        key = {"max": lambda v: -v, "one": lambda v: abs(v - 1)}.get(goal, lambda v: v)
        defined = [(key(v), j) for j, v in enumerate(row) if v is not None]
        values.append(row)
        best.append(min(defined)[1] if defined else None)
    labels = tuple(f"{METRIC_LABELS[m]} {GOAL_ARROWS[METRIC_GOALS[m]]}" for m in METRIC_NAMES)
    return MetricTable(methods, tuple(METRIC_NAMES), labels, tuple(values), tuple(best))


@dataclass
class ImageOutputs:
    """Everything the evaluation keeps of one image for the report and the grid.

    Attributes:
        name: pair name.
        metrics: ``{method: {metric: value}}`` for the model and every baseline.
        thumbnails: ``{column: uint8 (h, w, 3) or float (h, w)}`` for the grid (empty when the
            image is not in the grid).
        confidence: For a model with a confidence head, sampled pixels' predicted sigma and
            squared AB errors (:func:`sar_colorizer.confidence.sample_errors`).
        tile_size: Side of the tiles the network ran on for this image: the requested tile
            rounded to the model's multiple and shrunk for an image smaller than a tile (as
            ``predict`` does); None when unknown.
        cloud_or_snow: The pair's optical reference is flagged as covered by cloud or snow.
    """

    name: str
    metrics: dict[str, dict[str, float]]
    thumbnails: dict[str, np.ndarray] = field(default_factory=dict)
    confidence: np.ndarray | None = None
    tile_size: int | None = None
    cloud_or_snow: bool = False


# --------------------------------------------------------------------------------------------
# aggregation


def _finite_or_none(value: float) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def _summarise(
    names: list[str], flags: list[bool], per_image: list[dict[str, float]]
) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    std: dict[str, float | None] = {}
    for metric in METRIC_NAMES:
        values = np.array([scores[metric] for scores in per_image], dtype=np.float64)
        finite = values[np.isfinite(values)]
        if values.size and finite.size == values.size:
            summary[metric] = float(np.mean(values))
            std[metric] = float(np.std(values))
        elif finite.size:
            # An infinite PSNR (exact match) or an undefined ratio on some image: report the
            # mean of the others rather than inf/NaN, and say how many counted.
            summary[metric] = float(np.mean(finite))
            std[metric] = float(np.std(finite))
            summary.setdefault("n_finite", {})[metric] = int(finite.size)
        else:
            summary[metric] = None
            std[metric] = None
    summary["std"] = std
    summary["per_image"] = [
        {
            "name": name,
            "cloud_or_snow": flag,
            **{metric: _finite_or_none(scores[metric]) for metric in METRIC_NAMES},
        }
        for name, flag, scores in zip(names, flags, per_image, strict=True)
    ]
    return summary


def _advantage(model: dict[str, Any], baseline: dict[str, Any]) -> dict[str, Any]:
    """Differences of the means, signed so that positive means the model is better.

    For the ratios (best at 1) it is how much closer to 1 the model is.
    """
    advantage: dict[str, Any] = {}
    for metric in METRIC_NAMES:
        mine, theirs = model.get(metric), baseline.get(metric)
        if mine is None or theirs is None:
            advantage[metric] = None
            continue
        advantage[metric] = improvement(metric, mine, theirs)
    # How often the model wins image by image, on the headline colour error.
    wins = sum(
        1
        for mine, theirs in zip(model["per_image"], baseline["per_image"], strict=True)
        if mine["ab_rmse"] is not None
        and theirs["ab_rmse"] is not None
        and mine["ab_rmse"] < theirs["ab_rmse"]
    )
    advantage["images_better_ab_rmse"] = wins
    return advantage


def _method_summaries(images: Sequence[ImageOutputs]) -> dict[str, Any]:
    """``{"n_images": N, "model": {...}, "baselines": {...}}`` over ``images``."""
    names = [image.name for image in images]
    flags = [image.cloud_or_snow for image in images]
    model = _summarise(names, flags, [image.metrics[MODEL_KEY] for image in images])
    baselines = {
        name: _summarise(names, flags, [image.metrics[name] for image in images])
        for name in BASELINE_NAMES
    }
    model["advantage"] = {name: _advantage(model, baselines[name]) for name in BASELINE_NAMES}
    wins = model["advantage"]["no_colour"]["images_better_ab_rmse"]
    model["beats_no_colour"] = {"images": wins, "of": len(images),
                                "fraction": wins / len(images) if images else None}
    return {"n_images": len(images), "model": model, "baselines": baselines}


def build_report(images: Sequence[ImageOutputs]) -> dict[str, Any]:
    """Aggregate per-image scores into the ``report.json`` structure.

    Args:
        images: per-image outputs, each holding scores for the model and every baseline.

    Returns:
        ``{"n_images": N, "model": {...}, "baselines": {...}}`` (see the module docstring),
        over every image; when some image is flagged ``cloud_or_snow``, also ``"clear"``: the
        same summary over the unflagged images, with ``"left_out"``, the flagged names.
    """
    report = _method_summaries(images)
    samples = [image.confidence for image in images if image.confidence is not None]
    if samples:
        from sar_colorizer.confidence import error_by_decile

        report["confidence"] = error_by_decile(np.concatenate(samples))
    left_out = [image.name for image in images if image.cloud_or_snow]
    if left_out:
        clear = _method_summaries([image for image in images if not image.cloud_or_snow])
        report[CLEAR_KEY] = {**clear, "left_out": left_out}
    return report


# --------------------------------------------------------------------------------------------
# writing


def format_markdown(report: dict[str, Any], title: str = "Colorization evaluation") -> str:
    """The report as markdown: a table (rows = methods, columns = metrics) and advantages; when
    some pair is flagged ``cloud_or_snow``, the same over the clear references only.

    Args:
        report: the structure returned by :func:`build_report` / :func:`evaluate`.
        title: heading of the document.

    Returns:
        Markdown text ending with a newline.
    """
    lines = [
        f"# {title}",
        "",
        f"{report['n_images']} image(s){_left_out_text(report)}. Every method's output and the "
        "reference share the L derived from the SAR; the reference takes its colour (A, B) from "
        "the optical image.",
        "",
        *_summary_markdown(report),
    ]
    if CLEAR_KEY in report:
        lines += _clear_markdown(report)
    if "confidence" in report:
        lines += _confidence_markdown(report["confidence"])
    columns, rows = image_rows(report)
    lines += ["", "## Images", "", "| " + " | ".join(columns) + " |",
              "|---" * len(columns) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _left_out_text(report: dict[str, Any]) -> str:
    """For a report that left the flagged pairs out (``flagged="exclude"``): how many."""
    left_out = report.get("left_out") or []
    if not left_out:
        return ""
    return f" ({len(left_out)} more flagged cloud_or_snow left out: {', '.join(left_out)})"


def clear_title(report: dict[str, Any]) -> str:
    """Heading of the summary over the clear references only."""
    clear = report[CLEAR_KEY]
    return (
        f"Clear references only ({clear['n_images']} of {report['n_images']} pairs; "
        f"{len(clear['left_out'])} flagged cloud_or_snow left out)"
    )


def _clear_markdown(report: dict[str, Any]) -> list[str]:
    clear = report[CLEAR_KEY]
    lines = ["", f"## {clear_title(report)}", "", f"Left out: {', '.join(clear['left_out'])}.", ""]
    if not clear["n_images"]:
        return [*lines, "Every pair is flagged: no clear reference to score."]
    return lines + _summary_markdown(clear)


def _summary_markdown(summary: dict[str, Any]) -> list[str]:
    """The metric table, the advantage over each baseline and the no-colour count of a summary
    (``{"n_images", "model", "baselines"}``)."""
    table = metric_table(summary)
    lines = ["| method | " + " | ".join(table.labels) + " |",
             "|---" * (len(table.metrics) + 1) + "|"]
    for j, method in enumerate(table.methods):
        cells = " | ".join(table.cell(i, j) for i in range(len(table.metrics)))
        lines.append(f"| {method.replace('_', ' ')} | {cells} |")
    lines += ["", f"{ADVANTAGE_TITLE}:", ""]
    lines += [f"- {line}" for line in advantage_lines(summary)]
    model = summary[MODEL_KEY]
    beats = model.get("beats_no_colour")
    if beats and beats["of"]:
        lines += ["", beats_text(beats)]
    return lines


def beats_text(beats: dict[str, Any]) -> str:
    """``"The model beats no colour on X of N images (P%)."``"""
    return (f"The model beats no colour on {beats['images']} of {beats['of']} images "
            f"({100 * beats['fraction']:.0f}%).")


def _confidence_markdown(table: dict[str, Any]) -> list[str]:
    lines = ["", f"{confidence_caption(table)}:", "",
             "| " + " | ".join(CONFIDENCE_COLUMNS) + " |", "|---" * len(CONFIDENCE_COLUMNS) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in confidence_rows(table)]
    return lines


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path, overwrite=True) as temporary:
        temporary.write_text(text, encoding="utf-8")


def write_report(report: dict[str, Any], report_dir: str | os.PathLike[str]) -> Path:
    """Write ``report.json`` and ``report.md`` atomically into ``report_dir``.

    Returns:
        The path of ``report.json``.
    """
    folder = Path(report_dir)
    folder.mkdir(parents=True, exist_ok=True)
    json_path = folder / REPORT_JSON
    _write_text(json_path, json.dumps(report, indent=2, allow_nan=False) + "\n")
    _write_text(folder / REPORT_MD, format_markdown(report))
    return json_path


def best_baseline(report: dict[str, Any]) -> str:
    """The baseline with the lowest mean AB RMSE (the one the model must beat)."""
    candidates = [
        (report["baselines"][name]["ab_rmse"], name)
        for name in BASELINE_NAMES
        if report["baselines"][name]["ab_rmse"] is not None
    ]
    return min(candidates)[1] if candidates else BASELINE_NAMES[-1]


# --------------------------------------------------------------------------------------------
# pieces that report.md and report.html show alike

ADVANTAGE_TITLE = "Model against each baseline (positive = model better)"

#: Columns of the confidence table: AB error by decile of the predicted sigma.
CONFIDENCE_COLUMNS = ("decile", "sigma range", "predicted sigma", "AB RMSE network",
                      "AB RMSE output")

#: Per-image columns (metric, label) of the image table; the best baseline's AB RMSE follows.
IMAGE_METRICS = (("ab_rmse", "AB RMSE"), ("ciede2000", "CIEDE2000"), ("psnr", "PSNR dB"),
                 ("ssim", "SSIM"))


def advantage_lines(summary: dict[str, Any]) -> list[str]:
    """One line per baseline: the model's AB RMSE and PSNR beside it and on how many images its
    AB RMSE is lower (``"vs no colour: AB RMSE 7.24 vs 9.89 (+2.65 CIELAB units); ..."``)."""
    model = summary[MODEL_KEY]
    lines = []
    for name in BASELINE_NAMES:
        baseline = summary["baselines"][name]
        advantage = model["advantage"][name]
        parts = []
        if advantage["ab_rmse"] is not None:
            parts.append(
                f"AB RMSE {model['ab_rmse']:.2f} vs {baseline['ab_rmse']:.2f} "
                f"({advantage['ab_rmse']:+.2f} CIELAB units)"
            )
        if advantage["psnr"] is not None:
            parts.append(
                f"PSNR {model['psnr']:.2f} vs {baseline['psnr']:.2f} dB "
                f"({advantage['psnr']:+.2f} dB)"
            )
        parts.append(
            f"lower AB RMSE on {advantage['images_better_ab_rmse']} of {summary['n_images']} images"
        )
        lines.append(f"vs {name.replace('_', ' ')}: " + "; ".join(parts))
    return lines


def confidence_caption(table: dict[str, Any]) -> str:
    """What the confidence table shows, with its pixel count and rank correlation."""
    rho = table.get("spearman")
    return (
        "AB error by decile of the predicted sigma (1 = most confident; "
        f"{table['n_pixels']} sampled pixels"
        + (f", Spearman {rho:.2f} between sigma and the network's error" if rho is not None
           else "")
        + ")"
    )


def confidence_rows(table: dict[str, Any]) -> list[tuple[str, ...]]:
    """The confidence table's rows, formatted (columns: :data:`CONFIDENCE_COLUMNS`)."""
    return [
        (str(row["decile"]), f"{row['sigma_min']:.2f}-{row['sigma_max']:.2f}",
         f"{row['predicted_sigma']:.2f}", f"{row['ab_rmse_mean']:.2f}", f"{row['ab_rmse']:.2f}")
        for row in table["deciles"]
    ]


def image_rows(report: dict[str, Any]) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """The per-image table: its columns and one row per image, in the report's order (name,
    the model's :data:`IMAGE_METRICS`, the best baseline's AB RMSE, the cloud_or_snow flag)."""
    baseline = best_baseline(report)
    columns = ("image", *(label for _, label in IMAGE_METRICS),
               f"{baseline.replace('_', ' ')} AB RMSE", "cloud_or_snow")
    rows = []
    base = report["baselines"][baseline]["per_image"]
    for mine, theirs in zip(report[MODEL_KEY]["per_image"], base, strict=True):
        rows.append((
            mine["name"],
            *(format_value(mine.get(metric), metric) for metric, _ in IMAGE_METRICS),
            format_value(theirs.get("ab_rmse"), "ab_rmse"),
            "yes" if mine.get("cloud_or_snow") else "",
        ))
    return columns, rows
