"""The ``sarcolor`` command line: a click group with one thin module per command.

Commands parse options, call library functions and turn :class:`SarColorError` into one line
on stderr and a non-zero exit. Nothing here imports TensorFlow at import time.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import click

from sar_colorizer._tf import restore_stderr, set_tensorflow_verbose
from sar_colorizer.errors import Interrupted, SarColorError
from sar_colorizer.version import __version__

logger = logging.getLogger(__name__)


class _Group(click.Group):
    """Turns errors into one clean line and the exit status of their class.

    The package's own errors print their message; SIGINT, SIGTERM and SIGHUP clean up and exit
    with 128 + the signal number; any other exception prints one line (the traceback with -v).
    """

    def invoke(self, ctx: click.Context) -> Any:
        from sar_colorizer.signals import interrupts_raise, received

        try:
            with interrupts_raise():
                return super().invoke(ctx)
        except SarColorError as error:
            exception = click.ClickException(str(error))
            setattr(exception, "exit_code", error.exit_code)  # noqa: B010  (a ClassVar in click)
            raise exception from error
        except Interrupted as error:
            restore_stderr()
            click.echo(f"Interrupted ({error.signal_name}); unfinished outputs were removed.",
                       err=True)
            ctx.exit(error.exit_code)
        except KeyboardInterrupt:  # raised before the handlers were installed
            restore_stderr()
            click.echo("Interrupted (SIGINT); unfinished outputs were removed.", err=True)
            ctx.exit(130)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as error:
            signum = received()
            if signum is not None:  # library code turned the interruption into another error
                logger.debug("after the interruption", exc_info=True)
                interrupted = Interrupted(signum)
                restore_stderr()
                click.echo(f"Interrupted ({interrupted.signal_name}); unfinished outputs were "
                           "removed.", err=True)
                ctx.exit(interrupted.exit_code)
            verbose = (ctx.obj or {}).get("verbosity", 0) > 0
            if verbose:
                logger.error("unexpected error", exc_info=True)
            message = f"{type(error).__name__}: {error}".splitlines()[0] if str(error) else (
                type(error).__name__
            )
            hint = "" if verbose else "; run with -v for the traceback"
            raise click.ClickException(f"unexpected error: {message}{hint}") from error


def configure_logging(verbosity: int) -> None:
    """Map ``-v``/``-q`` counts to log levels; ``-vv`` also lets TensorFlow's logs through."""
    level = {-2: logging.ERROR, -1: logging.WARNING, 0: logging.INFO}.get(
        max(verbosity, -2), logging.DEBUG
    )
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s", force=True)
    # rasterio logs GDAL's failures at INFO ("GDAL signalled an error ... not recognized as
    # being in a supported file format" when a file is probed): they change no result (one
    # that does becomes an exception, and the command says what failed), so only -v shows them.
    for name in ("rasterio._env", "rasterio._err"):
        logging.getLogger(name).setLevel(logging.DEBUG if level <= logging.DEBUG else logging.WARNING)
    set_tensorflow_verbose(verbosity >= 2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="sarcolor")
@click.option("-v", "--verbose", count=True, help="More log output (-vv: TensorFlow's own logs too).")
@click.option("-q", "--quiet", count=True, help="Less log output; -q also hides progress bars.")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: int) -> None:
    """Colorize Sentinel-1 SAR images with a network trained on Sentinel-1/Sentinel-2 pairs.

    \b
    Quick start:
      sarcolor predict scene.tif scene_color.png      # shipped default model
      sarcolor preprocess pairs/ chips/               # your own SAR/optical pairs
      sarcolor pairs CATALOG pairs/ --bbox W,S,E,N --dates START/END   # pairs from STAC
      sarcolor train chips/ my_model
      sarcolor eval my_model test_pairs/ --report report/
      sarcolor calibrate S1A_IW_GRDH_....zip sigma0_db.tif  # a downloaded Sentinel-1 product
    """
    ctx.ensure_object(dict)
    ctx.obj["verbosity"] = verbose - quiet
    ctx.obj["quiet"] = quiet > 0
    configure_logging(verbose - quiet)


def _register() -> None:
    from sar_colorizer.cli import calibrate, export, pairs, predict, preprocess, train
    from sar_colorizer.cli import eval as eval_cmd

    cli.add_command(pairs.pairs)
    cli.add_command(preprocess.preprocess)
    cli.add_command(train.train)
    cli.add_command(eval_cmd.eval_command)
    cli.add_command(predict.predict)
    cli.add_command(export.export)
    cli.add_command(calibrate.calibrate)


_register()


def main() -> None:
    """Console-script entry point.

    After an interruption the outputs are already cleaned up; the process then ends at once
    instead of waiting seconds for TensorFlow's threads to shut down.
    """
    try:
        cli(prog_name="sarcolor")
    except SystemExit as done:
        if isinstance(done.code, int) and done.code > 128:
            from sar_colorizer.io.atomic import sweep

            sweep()  # files an abandoned C call (GDAL) created after the cleanup
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(done.code)
        raise
