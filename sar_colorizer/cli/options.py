"""Option decorators shared by the commands, so that a flag is spelled the same everywhere."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

overwrite_option = click.option(
    "--overwrite", is_flag=True, default=False, help="Replace outputs that already exist."
)

model_option = click.option(
    "--model",
    "model_path",
    default="default",
    show_default=True,
    metavar="BUNDLE",
    help="Model bundle directory written by 'sarcolor train', or 'default' for the shipped model.",
)


def creation_options(func: F) -> F:
    """``--co NAME=VALUE`` GDAL creation options, as in rasterio's ``rio`` commands."""
    return click.option(
        "--co",
        "creation_options",
        multiple=True,
        metavar="NAME=VALUE",
        callback=_parse_creation_options,
        help="GDAL creation option for the output driver (repeatable), e.g. --co COMPRESS=LZW.",
    )(func)


def _parse_creation_options(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[str, str]:
    options: dict[str, str] = {}
    for value in values:
        name, sep, setting = value.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{value!r} is not NAME=VALUE (e.g. COMPRESS=LZW)")
        options[name.upper()] = setting
    return options


def progress_enabled(ctx: click.Context) -> bool:
    """Progress bars are on unless ``-q`` was given (tqdm itself hides them off a terminal)."""
    obj = ctx.find_root().obj or {}
    return not obj.get("quiet", False)


bands_option = click.option(
    "--bands",
    default=None,
    metavar="BANDS",
    help="SAR band(s) to use: names (VH, or VV,VH; matched against band descriptions or the "
    "file name) or 1-based numbers (1 or 1,2).  [default: all bands]",
)

# The scales of sar_colorizer.sar.radiometry.INPUT_SCALES (+ "auto"), spelled out so that
# building the command line imports nothing heavy.
input_scale_option = click.option(
    "--input-scale",
    type=click.Choice(["auto", "linear", "db", "amplitude", "display"]),
    default="auto",
    show_default=True,
    help="Radiometric scale of the SAR: linear power, dB, amplitude, or a display-stretched "
    "integer image; auto detects linear/dB/display (amplitude must be given).",
)

tone_option = click.option(
    "--tone",
    type=click.Choice(["matched", "sar"]),
    default="matched",
    show_default=True,
    help="Lightness: matched to the brightness of the training optical images (natural look), "
    "or plain SAR backscatter brightness.",
)

tile_size_option = click.option(
    "--tile-size",
    type=click.IntRange(min=1),
    default=None,
    help="Tile side in pixels for the network (rounded to the model's multiple).  [default: the "
    "tile size the model was trained on, recorded in its bundle]",
)

# sar_colorizer.color.convention.OPTICAL_CONVENTIONS, spelled out so that --help stays cheap.
optical_offset_option = click.option(
    "--optical-offset",
    type=float,
    default=None,
    help="Offset added to integer optical reflectance before dividing by 10000: -1000 for "
    "Sentinel-2 Level-2A (BOA_ADD_OFFSET) or Level-1C (RADIO_ADD_OFFSET) from processing "
    "baseline 04.00 on.  [default: from the file's metadata, else 0; it cancels in 'dos']",
)


def optical_convention_option(default: str | None, help_default: str) -> Callable[[F], F]:
    """``--optical-convention``: how optical images become the RGB the model learns."""
    return click.option(
        "--optical-convention",
        type=click.Choice(["dos", "as-is"]),
        default=default,
        help="Optical colour convention: 'dos' removes haze (per-channel dark-object "
        "subtraction) and applies one joint 99th-percentile stretch, so Level-1C, Level-2A "
        "and display images agree; 'as-is' is the rendering of earlier versions.  "
        f"[default: {help_default}]",
    )
