"""``sarcolor pairs``: SAR / optical training pairs of a region from a STAC catalog."""

from __future__ import annotations

import click

from sar_colorizer.cli.options import overwrite_option, seed_option

# Spelled out here so that ``--help`` imports nothing of the stac extra; the library checks
# that they agree (sar_colorizer.data.stac.DEFAULT_S1_COLLECTION, ...).
_S1_COLLECTION = "sentinel-1-rtc"
_S2_COLLECTION = "sentinel-2-l2a"
_SIGNERS = ("auto", "none", "planetary-computer")


@click.command("pairs")
@click.argument("catalog", metavar="CATALOG")
@click.argument("out_dir", metavar="OUT", type=click.Path(path_type=str))
@click.option("--bbox", required=True, metavar="W,S,E,N",
              help="Area in degrees (WGS 84): west,south,east,north.")
@click.option("--dates", required=True, metavar="START/END",
              help="Optical acquisition dates, ISO (2023-06-01/2023-08-31; END inclusive).")
@click.option("--s1-collection", default=_S1_COLLECTION, show_default=True,
              help="SAR collection (assets vv, vh in linear power).")
@click.option("--s2-collection", default=_S2_COLLECTION, show_default=True,
              help="Optical collection (assets B04, B03, B02 or red, green, blue; SCL masks "
                   "clouds where present).")
@click.option("--max-cloud", type=click.FloatRange(0, 100), default=20.0, show_default=True,
              help="Largest eo:cloud_cover of an optical item, in percent.")
@click.option("--max-days", type=click.FloatRange(min=0), default=3.0, show_default=True,
              help="Largest time between the SAR and the optical acquisition, in days.")
@click.option("--size", type=click.IntRange(min=16), default=1024, show_default=True,
              help="Side of the pair tiles in pixels of the optical grid (10 m).")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Most optical acquisitions to use, least cloudy first.  [default: all]")
@click.option("--min-valid", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Keep tiles with at least this share of pixels clear in the optical image "
                   "and covered by both images.")
@click.option("--val-fraction", type=click.FloatRange(0, 1, max_open=True), default=0.2,
              show_default=True,
              help="Share of the optical acquisitions labelled val in pairs.csv (whole "
                   "acquisitions, never tiles of one scene on both sides).")
@seed_option("of the validation draw.")
@click.option("--sign", "signer", type=click.Choice(_SIGNERS), default="auto", show_default=True,
              help="Sign asset URLs: auto does it for Planetary Computer (needs the "
                   "planetary-computer package).")
@overwrite_option
@click.pass_context
def pairs(ctx: click.Context, catalog: str, out_dir: str, bbox: str, dates: str,
          s1_collection: str, s2_collection: str, max_cloud: float, max_days: float, size: int,
          limit: int | None, min_valid: float, val_fraction: float, seed: int, signer: str,
          overwrite: bool) -> None:
    """Write SAR / optical pairs of a region from the STAC CATALOG into the folder OUT.

    CATALOG is a STAC API URL (e.g. https://planetarycomputer.microsoft.com/api/stac/v1) or a
    static catalog (catalog.json, a path or URL). Each optical item is matched with the
    overlapping SAR item nearest in time; both are read onto the optical grid, clouds masked
    with the scene classification, and written as OUT/sar/*.tif (VV, VH in dB), OUT/opt/*.tif
    (B04, B03, B02 reflectance x 10000) and OUT/pairs.csv (provenance and a train/val split by
    acquisition). Then: sarcolor preprocess OUT CHIPS --bands VH.

    Needs the stac extra: pip install ".[stac]" in the sarcolor folder. GDAL's HTTP settings for
    Cloud-Optimised GeoTIFFs are set unless the environment sets them (see the README).
    """
    from sar_colorizer.data.stac import PairsRequest, make_pairs, parse_bbox, parse_dates

    start, end = parse_dates(dates)
    request = PairsRequest(
        catalog=catalog, bbox=parse_bbox(bbox), start=start, end=end,
        s1_collection=s1_collection, s2_collection=s2_collection, max_cloud=max_cloud,
        max_days=max_days, size=size, limit=limit, min_valid=min_valid,
        val_fraction=val_fraction, seed=seed, signer=signer,
    )
    quiet = (ctx.find_root().obj or {}).get("quiet", False)
    summary = make_pairs(request, out_dir, overwrite=overwrite,
                         progress=None if quiet else lambda line: click.echo(line, err=True))
    click.echo(f"wrote {summary.n_tiles} pair tiles ({summary.n_train} train, {summary.n_val} "
               f"val) of {summary.n_scene_pairs} scene pairs to {summary.out_dir}")
