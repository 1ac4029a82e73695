"""``sarcolor calibrate``: a Sentinel-1 GRD product's backscatter as a georeferenced GeoTIFF."""

from __future__ import annotations

import click

from sar_colorizer.cli.options import overwrite_option, product_options, progress_enabled


@click.command("calibrate")
@click.argument("product", type=click.Path())
@click.argument("output", type=click.Path())
@product_options
@click.option(
    "--polarisations",
    default=None,
    metavar="POLS",
    help="Polarisations to write, in band order (e.g. VH or VV,VH).  [default: all in the "
    "product]",
)
@click.option(
    "--linear", is_flag=True, help="Write linear power instead of decibels."
)
@overwrite_option
@click.pass_context
def calibrate(
    ctx: click.Context,
    product: str,
    output: str,
    calibration: str,
    noise_removal: bool,
    polarisations: str | None,
    linear: bool,
    overwrite: bool,
) -> None:
    """Write the calibrated, noise-removed, geocoded backscatter of PRODUCT to OUTPUT.

    PRODUCT is a Sentinel-1 GRD product: its .SAFE folder, its manifest.safe, or the .zip as
    downloaded. OUTPUT is a float32 GeoTIFF in dB (one band per polarisation, described VV,
    VH, ...; NaN where there is no data) in the UTM zone of the footprint at the product's
    pixel spacing. Geocoding uses the annotation's geolocation grid on the ellipsoid: there is
    no terrain correction.

    \b
    Example:
      sarcolor calibrate S1A_IW_GRDH_1SDV_....zip sigma0_db.tif
    """
    from sar_colorizer.io.s1product import ProductOptions, calibrate_product

    options = ProductOptions(
        calibration=calibration,
        noise_removal=noise_removal,
        polarisations=tuple(p for p in (polarisations or "").split(",") if p.strip()) or None,
    )
    path = calibrate_product(product, output, options, db=not linear, overwrite=overwrite,
                             progress=progress_enabled(ctx))
    click.echo(f"wrote {path}")
