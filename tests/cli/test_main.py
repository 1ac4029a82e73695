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
