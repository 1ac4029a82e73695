"""``sarcolor export``: export a model bundle to ONNX or a TensorFlow SavedModel."""

from __future__ import annotations

import click

from sar_colorizer.cli.options import overwrite_option
from sar_colorizer.export import EXPORT_FORMATS, export_model


@click.command("export")
@click.argument("model", metavar="MODEL")
@click.argument("output", type=click.Path())
@click.option(
    "--format",
    "export_format",
    type=click.Choice(EXPORT_FORMATS, case_sensitive=False),
    default=None,
    help="Output format.  [default: onnx for an OUTPUT ending in .onnx, otherwise savedmodel]",
)
@click.option("--opset", type=int, default=None, help="ONNX opset version.  [default: tf2onnx's]")
@overwrite_option
def export(
    model: str, output: str, export_format: str | None, opset: int | None, overwrite: bool
) -> None:
    """Export the network of MODEL (a bundle directory, or 'default') to OUTPUT.

    The exported graph maps relative SAR intensity (batch, height, width, bands), float32 in
    [0, 1] after speckle filtering and normalisation, to float32 (batch, height, width,
    channels), the channels named in bundle.json's outputs.channels: a and b, normalised CIELAB
    a*, b* in [-1, 1] (x 110 for CIELAB units); a model with a confidence head (the shipped
    one) adds log_var_a and log_var_b, the natural log of the predicted variance of normalised
    a*, b* (any real number, mostly below -1; sigma in CIELAB units = 110 * exp(log_var / 2)).
    Height and width are dynamic (multiples of the bundle's tile_multiple). The bundle.json
    goes along: inside the SavedModel folder, or as the ONNX metadata property
    'sarcolor_bundle'. ONNX needs the onnx extra: pip install ".[onnx]" in the sarcolor folder.

    \b
    Examples:
      sarcolor export my_model my_model.onnx
      sarcolor export default colorizer_savedmodel --format savedmodel
    """
    path = export_model(model, output, export_format, overwrite=overwrite, opset=opset)
    click.echo(f"wrote {path}")
