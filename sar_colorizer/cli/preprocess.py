"""``sarcolor preprocess``: cut co-registered SAR/optical pairs into TFRecord chips."""

from __future__ import annotations

import click

from sar_colorizer.cli.options import (
    band_names_option,
    bands_option,
    flagged_option,
    input_scale_option,
    optical_convention_option,
    optical_offset_option,
    overwrite_option,
    progress_enabled,
    seed_option,
    speckle_filter_option,
    speckle_window_option,
)

# Spelled out here (not imported) so that ``sarcolor --help`` stays cheap; the library validates.
_NORMALIZATIONS = ("percentile", "db_range")


@click.command("preprocess")
@click.argument("input_path", metavar="INPUT", type=click.Path(exists=True, path_type=str))
@click.argument("out_dir", metavar="OUT_DIR", type=click.Path(path_type=str))
@click.option(
    "--chip-size",
    default=256,
    show_default=True,
    type=click.IntRange(min=8),
    help="Side of the square chips, in pixels; images smaller than this become one chip each, "
    "their side rounded up to 64 px and padded with nodata.",
)
@click.option(
    "--stride",
    default=None,
    type=click.IntRange(min=1),
    help="Step between chips in pixels  [default: chip size, no overlap].",
)
@click.option(
    "--max-nodata",
    "max_nodata_fraction",
    default=0.1,
    show_default=True,
    type=click.FloatRange(0.0, 1.0),
    help="Drop chips with a larger fraction of nodata pixels (SAR or optical).",
)
@click.option(
    "--min-sar-std",
    default=0.005,
    show_default=True,
    type=click.FloatRange(min=0.0),
    help="Drop chips whose SAR relative intensity (0-1) has a smaller standard deviation.",
)
@click.option(
    "--min-optical-std",
    default=0.002,
    show_default=True,
    type=click.FloatRange(min=0.0),
    help="Drop chips whose optical RGB (0-1) is flatter than this in every channel.",
)
@bands_option
@band_names_option
@input_scale_option
@click.option(
    "--normalization",
    default="percentile",
    show_default=True,
    type=click.Choice(_NORMALIZATIONS),
    help="SAR normalisation: per-image percentile stretch, or a fixed dB window.",
)
@click.option(
    "--percentile",
    default=99.0,
    show_default=True,
    type=click.FloatRange(0, 100, min_open=True),
    help="Percentile of each source image's valid linear power that maps to 1.",
)
@click.option(
    "--db-min", default=-25.0, show_default=True, help="Lower end of the dB window (db_range)."
)
@click.option(
    "--db-max", default=5.0, show_default=True, help="Upper end of the dB window (db_range)."
)
@speckle_filter_option(
    "for the SAR feature in the statistics and baselines (chips are stored unfiltered; "
    "training filters in its pipeline)."
)
@speckle_window_option()
@click.option(
    "--val-fraction",
    default=0.15,
    show_default=True,
    type=click.FloatRange(0.0, 1.0, max_open=True),
    help="Fraction of the training images held out for validation (by whole image).",
)
@click.option(
    "--include-test",
    is_flag=True,
    default=False,
    help="Also write pairs labelled 'test' in the manifest (as a test split).",
)
@flagged_option("exclude", "leave them out (their colour is not the surface's) or cut chips "
                "from them too.")
@seed_option("of the validation draw.")
@click.option(
    "--chips-per-shard",
    default=128,
    show_default=True,
    type=click.IntRange(min=1),
    help="About this many chips per TFRecord shard.",
)
@optical_convention_option("dos", "dos")
@optical_offset_option
@overwrite_option
@click.pass_context
def preprocess(
    ctx: click.Context,
    input_path: str,
    out_dir: str,
    chip_size: int,
    stride: int | None,
    max_nodata_fraction: float,
    min_sar_std: float,
    min_optical_std: float,
    bands: str | None,
    band_names: list[str] | None,
    input_scale: str,
    normalization: str,
    percentile: float,
    db_min: float,
    db_max: float,
    speckle_filter: str,
    speckle_window: int,
    val_fraction: float,
    include_test: bool,
    flagged: str,
    seed: int,
    chips_per_shard: int,
    optical_convention: str,
    optical_offset: float | None,
    overwrite: bool,
) -> None:
    """Cut pairs from INPUT into TFRecord chips, stats.json and pairs.csv in OUT_DIR.

    INPUT is a folder with sar/ and opt/ sub-folders (files matched by name), SEN1-2 style
    s1_*/ and s2_*/ folders, a folder holding a pairs.csv manifest, or a CSV manifest with columns
    sar,optical[,split] (paths relative to the CSV). Georeferenced pairs on different grids are
    reprojected onto the SAR grid. Train and validation are split by whole source image; pairs
    labelled 'test' are left out unless --include-test, pairs flagged cloud_or_snow unless
    --flagged include.

    \b
    Example (the s1s2-la-texas data, single-band VH PNGs):
      sarcolor preprocess ../shared/data/s1s2-la-texas chips/ --band-names VH
    """
    from sar_colorizer.data.chips import ChipFilter
    from sar_colorizer.data.preprocess import preprocess as run_preprocess
    from sar_colorizer.sar.radiometry import Normalization
    from sar_colorizer.sar.speckle import SpeckleFilter

    stats = run_preprocess(
        input_path,
        out_dir,
        chip_size=chip_size,
        stride=stride,
        chip_filter=ChipFilter(max_nodata_fraction, min_sar_std, min_optical_std),
        bands=bands,
        band_names=band_names,
        input_scale=input_scale,
        normalization=Normalization(normalization, percentile, db_min, db_max),
        speckle_filter=SpeckleFilter(name=speckle_filter, window=speckle_window),
        val_fraction=val_fraction,
        include_test=include_test,
        flagged=flagged,
        seed=seed,
        chips_per_shard=chips_per_shard,
        overwrite=overwrite,
        progress=progress_enabled(ctx),
        optical_convention=optical_convention,
        optical_offset=optical_offset,
    )
    counts = ", ".join(f"{split}: {count} chips" for split, count in stats["n_chips"].items())
    click.echo(f"{out_dir}: {counts}")
