"""Option decorators shared by the commands, so that a flag is spelled the same everywhere."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from sar_colorizer.color.convention import OPTICAL_CONVENTIONS
from sar_colorizer.data.pairs import FLAGGED_CHOICES
from sar_colorizer.inference.options import ColourOptions
from sar_colorizer.inference.tone import TONES
from sar_colorizer.sar.radiometry import INPUT_SCALES

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
    """Progress is shown unless ``-q`` was given: a bar on a terminal, a line now and then
    elsewhere (:mod:`sar_colorizer.progress`)."""
    obj = ctx.find_root().obj or {}
    return not obj.get("quiet", False)


bands_option = click.option(
    "--bands",
    default=None,
    metavar="BANDS",
    help="SAR band(s) to use: names (VH, or VV,VH; matched against band descriptions or the "
    "file name) or 1-based numbers (1 or 1,2).  [default: all bands; for a model of "
    "optional polarisations, every band that names one it takes]",
)

def _split_names(ctx: click.Context, param: click.Parameter, value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = [name.strip() for name in value.split(",")]
    if not all(names):
        raise click.BadParameter(f"{value!r} is not a comma-separated list of names (e.g. VV,VH)")
    return names


band_names_option = click.option(
    "--band-names",
    default=None,
    metavar="NAMES",
    callback=_split_names,
    help="Polarisation of each selected SAR band, in order (VH, or VV,VH), e.g. for files "
    "whose band descriptions and name do not say  [default: band descriptions, a "
    "polarisation in the file name, else band1...].",
)

input_scale_option = click.option(
    "--input-scale",
    type=click.Choice(["auto", *INPUT_SCALES]),
    default=ColourOptions.input_scale,
    show_default=True,
    help="Radiometric scale of the SAR: linear power, dB, amplitude, or a display-stretched "
    "integer image; auto detects linear/dB/display (amplitude must be given).",
)

tone_option = click.option(
    "--tone",
    type=click.Choice(TONES),
    default=ColourOptions.tone,
    show_default=True,
    help="Lightness: 'matched' to the brightness of the training optical images (natural look), "
    "plain SAR backscatter brightness ('sar', sharpest), or half of each ('balanced').",
)

tile_size_option = click.option(
    "--tile-size",
    type=click.IntRange(min=1),
    default=None,
    help="Tile side in pixels for the network (rounded to the model's multiple).  [default: the "
    "tile size the model was trained on, recorded in its bundle]",
)

mute_unsure_option = click.option(
    "--mute-unsure/--no-mute-unsure",
    "shrink",
    default=None,
    help="Move a*, b* toward neutral grey where the model is unsure of the colour (gain "
    "|ab|^2 / (|ab|^2 + k sigma^2), k chosen on validation data in training).  [default: on "
    "for models with a confidence head]",
)

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
        type=click.Choice(OPTICAL_CONVENTIONS),
        default=default,
        help="Optical colour convention: 'dos' removes haze (per-channel dark-object "
        "subtraction) and applies one joint 99th-percentile stretch, so Level-1C, Level-2A "
        "and display images agree; 'as-is' is the rendering of earlier versions.  "
        f"[default: {help_default}]",
    )


def flagged_option(default: str, what: str) -> Callable[[F], F]:
    """``--flagged``: what a command does with pairs the manifest flags ``cloud_or_snow``."""
    return click.option(
        "--flagged",
        type=click.Choice(FLAGGED_CHOICES),
        default=default,
        show_default=True,
        help=f"Pairs whose optical image the manifest flags cloud_or_snow: {what}",
    )


# The defaults of sar_colorizer.train_config.TrainConfig and sar_colorizer.data.preprocess, spelled
# out so that --help imports nothing heavy.
DEFAULT_SPECKLE_FILTER = "boxcar"
DEFAULT_SPECKLE_WINDOW = 5
DEFAULT_SEED = 0


def _defaulted_option(
    flag: str, default: object, help_text: str, from_config: bool, **settings: Any
) -> Callable[[F], F]:
    """An option whose default a ``--config`` file may also set (``from_config``): then the
    click default is None, so that the config's value (else the library's) stands unless the
    flag is given, and the help names the default itself."""
    if from_config:
        return click.option(flag, default=None, help=f"{help_text}  [default: {default}]",
                            **settings)
    return click.option(flag, default=default, show_default=True, help=help_text, **settings)


def speckle_filter_option(purpose: str, *, from_config: bool = False) -> Callable[[F], F]:
    """``--speckle-filter NAME``: the speckle filter (in linear power) and what it is for.

    Args:
        purpose: Ends the help: "Speckle filter " + purpose.
        from_config: The command also reads a ``--config`` file (no click default).
    """
    return _defaulted_option("--speckle-filter", DEFAULT_SPECKLE_FILTER,
                             f"Speckle filter {purpose}", from_config, metavar="NAME")


def speckle_window_option(*, from_config: bool = False) -> Callable[[F], F]:
    """``--speckle-window N``: the speckle filter's window in pixels."""
    return _defaulted_option("--speckle-window", DEFAULT_SPECKLE_WINDOW,
                             "Speckle filter window (odd, >= 3).", from_config, type=int)


def seed_option(purpose: str, *, from_config: bool = False) -> Callable[[F], F]:
    """``--seed N``: the random seed and what it draws.

    Args:
        purpose: Ends the help: "Random seed " + purpose.
        from_config: The command also reads a ``--config`` file (no click default).
    """
    return _defaulted_option("--seed", DEFAULT_SEED, f"Random seed {purpose}", from_config,
                             type=int)


def tiles_per_call_option(func: F) -> F:
    """``--tiles-per-call N``, and ``--batch-size`` as its hidden, deprecated spelling.

    ``--batch-size`` means the global training batch in ``train``; in ``predict`` it was the
    number of tiles per model call, the job of ``--tiles-per-call`` now. The old spelling still
    works there, with a one-line warning; both arrive as ``tiles_per_call``.
    """
    func = click.option(
        "--batch-size",
        "deprecated_batch_size",
        type=click.IntRange(min=1),
        default=None,
        hidden=True,
        callback=_warn_batch_size,
    )(func)
    return click.option(
        "--tiles-per-call",
        type=click.IntRange(min=1),
        default=None,
        help="Most tiles per model call; larger batches run faster per pixel and use more "
        "memory.  [default: about a megapixel per call, 16 tiles of 256 px]",
    )(func)


def _warn_batch_size(
    ctx: click.Context, param: click.Parameter, value: int | None
) -> int | None:
    if value is not None:
        click.echo("Warning: --batch-size is deprecated in predict; use --tiles-per-call "
                   "(the same number).", err=True)
    return value


def resolve_tiles_per_call(tiles_per_call: int | None, deprecated_batch_size: int | None
                           ) -> int | None:
    """The tiles per call from ``--tiles-per-call`` or its deprecated spelling ``--batch-size``.

    Raises:
        click.UsageError: Both were given, with different numbers.
    """
    if deprecated_batch_size is None:
        return tiles_per_call
    if tiles_per_call is not None and tiles_per_call != deprecated_batch_size:
        raise click.UsageError("--batch-size (deprecated) contradicts --tiles-per-call; "
                               "give --tiles-per-call only")
    return deprecated_batch_size


def product_options(func: Any) -> Any:
    """``--calibration`` and ``--noise-removal/--no-noise-removal``: how a Sentinel-1 GRD
    product (``.SAFE`` folder, ``manifest.safe`` or ``.zip``) given as SAR input becomes
    backscatter."""
    from sar_colorizer.sar.product import CALIBRATIONS

    func = click.option(
        "--noise-removal/--no-noise-removal",
        default=True,
        show_default=True,
        help="Sentinel-1 products: subtract the thermal noise LUTs (range and azimuth vectors); "
        "--no-noise-removal for products without noise files.",
    )(func)
    return click.option(
        "--calibration",
        type=click.Choice(CALIBRATIONS),
        default="sigma0",
        show_default=True,
        help="Sentinel-1 products: the backscatter the calibration LUTs give (gamma0 is "
        "ellipsoid-based, not terrain-flattened).",
    )(func)
