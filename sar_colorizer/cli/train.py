"""``sarcolor train``: train a colorization model on chips written by ``sarcolor preprocess``."""

import click


@click.command("train")
@click.argument("data_dir", type=click.Path())
@click.argument("model_out", type=click.Path())
def train(data_dir: str, model_out: str) -> None:
    """Train a model on DATA_DIR (from 'sarcolor preprocess') and write the bundle MODEL_OUT."""
    click.echo("sarcolor train: not implemented in this version yet.", err=True)
    raise SystemExit(2)
