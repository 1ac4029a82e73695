"""``sarcolor export``: export a model bundle to ONNX or a TensorFlow SavedModel."""

import click


@click.command("export")
@click.argument("model", type=click.Path())
@click.argument("output", type=click.Path())
def export(model: str, output: str) -> None:
    """Export MODEL to OUTPUT."""
    click.echo("sarcolor export: not implemented in this version yet.", err=True)
    raise SystemExit(2)
