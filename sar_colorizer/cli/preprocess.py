"""``sarcolor preprocess``: cut co-registered SAR/optical pairs into TFRecord chips."""

import click


@click.command("preprocess")
@click.argument("input_path", metavar="INPUT", type=click.Path())
@click.argument("out_dir", metavar="OUT_DIR", type=click.Path())
def preprocess(input_path: str, out_dir: str) -> None:
    """Cut pairs from INPUT (a folder of pairs or a CSV manifest) into chips in OUT_DIR."""
    click.echo("sarcolor preprocess: not implemented in this version yet.", err=True)
    raise SystemExit(2)
