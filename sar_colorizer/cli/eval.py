"""``sarcolor eval``: score a model against the optical truth and simple baselines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from sar_colorizer.cli.options import (
    band_names_option,
    bands_option,
    flagged_option,
    input_scale_option,
    mute_unsure_option,
    optical_convention_option,
    optical_offset_option,
    overwrite_option,
    progress_enabled,
    tile_size_option,
    tone_option,
)
from sar_colorizer.inference.options import ColourOptions


@click.command("eval")
@click.argument("model", metavar="MODEL")
@click.argument("input_path", metavar="INPUT", type=click.Path(exists=True))
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False),
    required=True,
    help="Folder for report.json, report.md, report.html and grid.png (created).",
)
@click.option(
    "--split",
    default=None,
    help="Evaluate only pairs of this split of a manifest (e.g. test).",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=None,
    help="Evaluate at most this many pairs (after --split).",
)
@click.option(
    "--grid",
    "grid_count",
    type=click.IntRange(min=0),
    default=4,
    show_default=True,
    help="Images (rows) in grid.png; 0 writes no grid.",
)
@flagged_option("include", "include them in the scores (a second table then scores the "
                "clear pairs alone) or exclude them.")
@tile_size_option
@bands_option
@band_names_option
@input_scale_option
@tone_option
@mute_unsure_option
@optical_convention_option(None, "the model's, from its bundle")
@optical_offset_option
@overwrite_option
@click.pass_context
def eval_command(
    ctx: click.Context, model: str, input_path: str, report_dir: str, **flags: Any
) -> None:
    """Evaluate MODEL on the SAR/optical pairs in INPUT and write a report.

    MODEL is a bundle directory written by 'sarcolor train', or 'default' for the shipped
    model. INPUT is a folder with sar/ and opt/ (matched by file name), SEN1-2 style s1_*/ and
    s2_*/ folders, a CSV manifest 'sar,optical[,split]', or a folder written by 'sarcolor
    preprocess' (its pairs.csv lists the source images: add --split val for the validation
    images). Images are coloured in tiles of the size the model was trained on, as by predict.

    The model and three baselines (no colour, mean training colour, per-pixel linear
    regression on the SAR) are scored on the same images, each against LAB(L of the output,
    colour of the optical image). The markdown table is printed.

    A manifest column cloud_or_snow (1/0) flags pairs whose optical image is covered by cloud
    or seasonal snow, so that it does not show the surface colour: the scores then also come
    over the clear pairs only, or, with --flagged exclude, only over those.
    """
    from sar_colorizer.errors import OutputExistsError
    from sar_colorizer.evaluation import evaluate, select_pairs
    from sar_colorizer.report import REPORT_JSON, format_markdown

    report_path = Path(report_dir) / REPORT_JSON
    if report_path.exists() and not flags["overwrite"]:
        raise OutputExistsError(f"{report_path} exists; pass --overwrite to replace it")

    # Find, select and check pairs before loading TensorFlow, so input mistakes fail fast.
    from sar_colorizer.data.layouts import find_pairs
    from sar_colorizer.data.pairs import check_pairs

    pairs = find_pairs(Path(input_path))
    check_pairs(select_pairs(pairs, split=flags["split"], limit=flags["limit"],
                             flagged=flags["flagged"]))

    from sar_colorizer.bundle import load_bundle

    # predict's options (and defaults, where no flag is given) colour the images.
    options = ColourOptions.of(**{name: flags.pop(name) for name in ColourOptions.names()
                                  if name in flags})
    report = evaluate(load_bundle(model), pairs, options, report_dir=report_dir,
                      progress=progress_enabled(ctx), **flags)
    click.echo(format_markdown(report), nl=False)
    click.echo(f"report written to {Path(report_dir)}", err=True)
