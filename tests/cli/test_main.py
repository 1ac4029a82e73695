"""The command-line entry point: help, version, and no TensorFlow at import time."""

import subprocess
import sys

import pytest
from click.testing import CliRunner

from sar_colorizer import __version__
from sar_colorizer.cli import cli

COMMANDS = ("preprocess", "train", "eval", "predict", "export")


def _imports_tensorflow(code: str) -> bool:
    probe = f"{code}\nimport sys\nprint('tensorflow' in sys.modules or 'keras' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True)
    return result.stdout.strip().splitlines()[-1] == "True"


def test_importing_the_package_does_not_import_tensorflow():
    assert not _imports_tensorflow("import sar_colorizer, sar_colorizer.cli")


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["predict", "--help"]])
def test_help_and_version_do_not_import_tensorflow(args):
    code = ("import sys\nfrom sar_colorizer.cli import cli\n"
            f"try:\n    cli({args!r}, prog_name='sarcolor')\nexcept SystemExit:\n    pass")
    assert not _imports_tensorflow(code)


def test_version_flag_prints_the_package_version():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: " in result.output and command in result.output


def test_console_script_runs():
    result = subprocess.run([sys.executable, "-m", "sar_colorizer", "--help"],
                            capture_output=True, text=True)
    assert result.returncode == 0
    for command in COMMANDS:
        assert command in result.stdout


def _options(command: str) -> dict[str, object]:
    return {name: param for param in cli.commands[command].params
            for name in getattr(param, "opts", []) if name.startswith("--")}


def test_a_flag_means_the_same_in_every_command():
    """Flags shared by several commands come from one decorator: same parameter name, type
    and metavar wherever they appear; predict's tiles per call is not called a batch size."""
    shared = ("--speckle-filter", "--speckle-window", "--seed", "--overwrite", "--bands",
              "--input-scale", "--tone", "--tile-size", "--mute-unsure", "--optical-convention",
              "--optical-offset")
    for flag in shared:
        found = [_options(command)[flag] for command in COMMANDS if flag in _options(command)]
        assert found, flag
        first = found[0]
        for other in found[1:]:
            assert (other.name, type(other.type), other.metavar) == (
                first.name, type(first.type), first.metavar), flag
    for command in ("train", "preprocess"):
        for flag in ("--speckle-filter", "--speckle-window", "--seed"):
            assert flag in _options(command), (command, flag)
    assert _options("predict")["--batch-size"].hidden
    assert not _options("train")["--batch-size"].hidden


def test_gdal_failures_that_change_no_result_show_only_with_verbose(samples_dir):
    """Probing a file that is not a raster (BigEarthNet's labels JSON beside its bands) makes
    GDAL signal an error that rasterio logs at INFO: not shown unless -v."""
    import logging

    import rasterio

    from sar_colorizer.cli import configure_logging

    not_a_raster = next(samples_dir.glob("bigearthnet-s1-s2/S1/*/*_labels_metadata.json"))
    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    try:
        for verbosity, shown in ((0, False), (1, True)):
            configure_logging(verbosity)
            handler = Collect()
            logging.getLogger().addHandler(handler)
            seen.clear()
            with pytest.raises(rasterio.errors.RasterioIOError):
                rasterio.open(not_a_raster)
            logging.getLogger().removeHandler(handler)
            assert any("GDAL signalled" in m for m in seen) is shown, (verbosity, seen)
    finally:
        configure_logging(0)
