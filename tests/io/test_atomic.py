"""The one atomic writer: owned temporary names, stale ones removed, exclusive publishing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sar_colorizer.errors import OutputExistsError
from sar_colorizer.io import atomic
from sar_colorizer.io.atomic import (
    atomic_file,
    atomic_folder,
    owner_pid,
    publish,
    remove_stale,
    temporary_path,
)


class Boom(Exception):
    pass


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_temporary_names_are_hidden_owned_and_keep_the_extension(tmp_path):
    name = temporary_path(tmp_path / "scene.tif")
    assert name.parent == tmp_path and name.name.startswith(".scene.sarcolor-")
    assert name.suffix == ".tif" and owner_pid(name) == os.getpid()
    assert owner_pid(tmp_path / ".scene.1234abcd.partial.tif") is None  # not ours


def test_atomic_file_publishes_on_success_and_cleans_up_on_error(tmp_path):
    out = tmp_path / "a.txt"
    with atomic_file(out) as temporary:
        temporary.write_text("one")
    assert out.read_text() == "one"
    with pytest.raises(Boom), atomic_file(out, overwrite=True) as temporary:
        temporary.write_text("two")
        raise Boom
    assert out.read_text() == "one"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_publishing_is_exclusive_without_overwrite(tmp_path):
    out = tmp_path / "a.txt"
    with pytest.raises(OutputExistsError, match="another run"), atomic_file(out) as temporary:
        temporary.write_text("mine")
        out.write_text("theirs")  # another writer finished first
    assert out.read_text() == "theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_folder_publishing_is_exclusive_and_overwrite_swaps(tmp_path):
    out = tmp_path / "bundle"
    with atomic_folder(out) as staging:
        (staging / "model").write_text("v1")
    # A second writer that started before the first finished must not replace it.
    staging = tmp_path / ".bundle.sarcolor-1-00000000.partial"
    staging.mkdir()
    (staging / "model").write_text("v2")
    with pytest.raises(OutputExistsError):
        publish(staging, out)
    assert (out / "model").read_text() == "v1"
    publish(staging, out, overwrite=True)
    assert (out / "model").read_text() == "v2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]  # the old one deleted


def test_overwrite_without_the_exchange_call_keeps_the_old_folder_on_failure(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic, "_renameat2", lambda *args: False)
    out = tmp_path / "bundle"
    out.mkdir()
    (out / "model").write_text("old")
    staging = tmp_path / "new"
    staging.mkdir()
    (staging / "model").write_text("new")
    real_rename = os.rename

    def failing_second_rename(source, target):
        if Path(source) == staging:
            raise OSError(28, "No space left on device")
        real_rename(source, target)

    monkeypatch.setattr(atomic.os, "rename", failing_second_rename)
    with pytest.raises(Exception, match="No space left"):
        publish(staging, out, overwrite=True)
    assert (out / "model").read_text() == "old"  # moved back, not left under a hidden name
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_folders_get_the_umask_mode_not_0700(tmp_path):
    previous = os.umask(0o022)
    try:
        with atomic_folder(tmp_path / "bundle") as staging:
            (staging / "x").write_text("x")
    finally:
        os.umask(previous)
    assert (tmp_path / "bundle").stat().st_mode & 0o777 == 0o755


def test_stale_temporaries_of_dead_writers_are_removed_and_logged(tmp_path, caplog):
    dead = _dead_pid()
    stale_file = tmp_path / f".out.sarcolor-{dead}-0123abcd.partial.tif"
    stale_file.write_text("x")
    stale_folder = tmp_path / f".chips.sarcolor-{dead}-0123abcd.partial"
    stale_folder.mkdir()
    (stale_folder / "a").write_text("x")
    live = tmp_path / f".out.sarcolor-{os.getppid()}-0123abcd.partial.tif"  # a live process
    live.write_text("x")
    foreign = tmp_path / ".hidden"
    foreign.write_text("x")
    legacy = tmp_path / ".out.0123abcd.partial.tif"  # an older version's: no owner to check
    legacy.write_text("x")
    with caplog.at_level("WARNING"):
        removed = remove_stale(tmp_path)
    assert sorted(removed) == sorted([stale_file, stale_folder])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, ".hidden", legacy.name])
    assert "left by an interrupted run" in caplog.text
    assert f"{legacy} looks like a temporary file of an older sarcolor run" in caplog.text


def test_a_claimed_output_refuses_a_second_run_at_once(tmp_path):
    from sar_colorizer.io.atomic import claim, claim_path

    target = tmp_path / "out" / "c.tif"
    code = (
        "import sys\nfrom sar_colorizer.io.atomic import claim\n"
        "from sar_colorizer.errors import OutputExistsError\n"
        f"try:\n    with claim({str(target)!r}):\n        print('claimed')\n"
        "except OutputExistsError as error:\n    print(error)\n"
    )
    with claim(target):
        assert claim_path(target).is_file()
        with claim(target):  # the same run again (nested writers): allowed
            pass
        assert claim_path(target).is_file()  # the outer block still holds it
        other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert "is being written by another run (process" in other.stdout, other
    assert not claim_path(target).exists()  # released
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert other.stdout.strip() == "claimed"
    assert list((tmp_path / "out").iterdir()) == []


def test_a_claim_left_by_a_killed_run_is_taken_over(tmp_path, caplog):
    from sar_colorizer.io.atomic import claim, claim_path, remove_stale

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    target = tmp_path / "c.tif"
    claim_path(target).write_text(dead)
    with caplog.at_level("WARNING"), claim(target):
        assert claim_path(target).read_text() != dead
    assert "left by an interrupted run" in caplog.text
    claim_path(target).write_text(dead)
    assert remove_stale(tmp_path) == [claim_path(target)]


def test_an_error_inside_the_claim_releases_it(tmp_path):
    from sar_colorizer.io.atomic import claim, claim_path

    with pytest.raises(RuntimeError), claim(tmp_path / "c.tif"):
        raise RuntimeError("failed")
    assert not claim_path(tmp_path / "c.tif").exists()


def test_a_full_disk_is_named_with_its_folder(tmp_path):
    import errno

    from sar_colorizer.io.atomic import write_error

    message = str(write_error(tmp_path / "c.tif", OSError(errno.ENOSPC, "No space left on device")))
    assert message.startswith(f"{tmp_path / 'c.tif'}: the disk is full in {tmp_path}")
    assert "free some space there or write elsewhere" in message
    other = str(write_error(tmp_path / "c.tif", OSError(errno.EACCES, "Permission denied")))
    assert other == f"{tmp_path / 'c.tif'}: cannot write (Permission denied)"


def test_a_gdal_write_failure_on_a_full_file_system_is_a_full_disk(tmp_path):
    """GDAL says only "Write failed"; the free space tells that the disk is full."""
    from sar_colorizer.io.atomic import write_error

    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root): {mounted.stderr.strip()}")
    try:
        with open(disk / "filler", "wb") as handle, pytest.raises(OSError):
            while True:
                handle.write(b"\\0" * 65536)
                handle.flush()
        message = str(write_error(disk / "c.tif", "Write failed"))
        assert "the disk is full in" in message and str(disk) in message
    finally:
        subprocess.run(["umount", str(disk)], check=False)
