"""``sarcolor predict``: colorize SAR rasters with a trained model."""

import click


@click.command("predict")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
def predict(paths: tuple[str, ...]) -> None:
    """Colorize INPUT... into OUTPUT with the shipped model or --model BUNDLE."""
    click.echo("sarcolor predict: not implemented in this version yet.", err=True)
    raise SystemExit(2)
