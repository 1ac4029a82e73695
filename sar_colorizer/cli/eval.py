"""``sarcolor eval``: score a model against the optical truth and simple baselines."""

import click


@click.command("eval")
@click.argument("model", type=click.Path())
@click.argument("input_path", metavar="INPUT", type=click.Path())
@click.option("--report", "report_dir", type=click.Path(), required=True, help="Report folder.")
def eval_command(model: str, input_path: str, report_dir: str) -> None:
    """Evaluate MODEL on the pairs in INPUT and write a report."""
    click.echo("sarcolor eval: not implemented in this version yet.", err=True)
    raise SystemExit(2)
