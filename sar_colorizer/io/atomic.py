"""The one safe way to write an output file or folder: nothing lost, nothing left behind.

Every writer of the package (rasters, bundles, exports, TFRecord folders, checkpoints) writes
under a temporary name beside the output and publishes it with one rename:

* The temporary name is hidden, recognisable and owned: ``.<stem>.sarcolor-<pid>-<hex>.<tag>
  <suffix>`` (the stem, so that sidecars GDAL names after it stay apart; the writer's process
  id, so that a later run can tell a live writer's file from one left by a killed run).
  :func:`remove_stale` deletes those whose process is gone, and logs each.
* Publishing without ``overwrite`` is exclusive: the rename fails if the output appeared in
  the meantime (Linux ``renameat2(RENAME_NOREPLACE)``; elsewhere a hard link for files), so a
  second writer of the same path never replaces the first one's output silently.
* Publishing with ``overwrite`` swaps a folder in atomically (``RENAME_EXCHANGE``) and only
  then deletes the previous one, so the user's output is never missing; where the swap is not
  available the previous folder is moved aside and moved back if the second rename fails.
* A run that will write an output claims it before the work (:func:`claim`): a hidden
  ``.<name>.sarcolor-claim`` file beside it, created exclusively, holding the process id. A
  second run that wants the same output is refused at once instead of after computing it;
  a claim whose process is gone (``kill -9``) is removed by the next run.
* On any error or interruption (also a signal turned into :class:`~sar_colorizer.errors.
  Interrupted`) the temporary file or folder is deleted and the output is untouched.

GDAL writes sidecars beside a raster (``.aux.xml``, ``.msk``, ``.ovr``, a world file):
:func:`publish_with_sidecars` renames them together with the image and
:func:`remove_with_sidecars` deletes them with it.

Folders are created with the mode the umask allows (``tempfile.mkdtemp`` would make them
0700, unreadable to the other users of a shared server).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import glob
import logging
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

from sar_colorizer.errors import OutputError, OutputExistsError

logger = logging.getLogger(__name__)

#: Marks the temporary names of this package (after the hidden stem).
MARK = "sarcolor"

_OWNED = re.compile(r"^\.(?P<stem>.*)\." + MARK + r"-(?P<pid>\d+)-(?P<token>[0-9a-f]{8})\.")

# Temporary names of sarcolor versions before the owner's pid was part of them
# (".scene.1a2b3c4d.partial.tif", ".scene.1a2b3c4d.staging.tif"): reported, never deleted,
# since no one can tell whether their writer still runs.
_UNOWNED = re.compile(r"^\..+\.[0-9a-f]{8}\.(partial|staging)(\.[A-Za-z0-9]+)?$")

_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2

# Files GDAL may write beside a raster, named by adding these to its full name (world files,
# named after the stem, are handled apart).
_SIDECAR_SUFFIXES = (".aux.xml", ".msk", ".ovr")


def temporary_path(path: str | os.PathLike[str], tag: str = "partial") -> Path:
    """A fresh temporary name beside ``path``, owned by this process.

    Same folder (a rename is atomic only within one file system), hidden, the output's stem
    and extension (GDAL picks the format and names world files after them).
    """
    path = Path(path)
    token = secrets.token_hex(4)
    return path.with_name(f".{path.stem}.{MARK}-{os.getpid()}-{token}.{tag}{path.suffix}")


def owner_pid(path: str | os.PathLike[str]) -> int | None:
    """The process id in a temporary name of this package; None for any other name."""
    match = _OWNED.match(Path(path).name)
    return int(match["pid"]) if match else None


_REMOVED: set[str] = set()  # globs of temporaries removed by this process (see sweep)


def remove_owned(temporary: str | os.PathLike[str]) -> None:
    """Delete ``temporary`` and every file beside it that shares its owned prefix
    (``.<stem>.sarcolor-<pid>-<hex>.``): sidecars, world files, GDAL's ``.ovr.tmp``.

    The prefix is remembered: :func:`sweep` deletes files that a C call still running in
    another thread (a COG conversion abandoned on an interruption) creates afterwards.
    """
    temporary = Path(temporary)
    match = _OWNED.match(temporary.name)
    pattern = glob.escape(str(temporary.parent / match.group(0))) + "*" if match else None
    paths = [Path(p) for p in glob.glob(pattern)] if pattern else [temporary]
    for path in paths:
        _remove(path)
    if pattern:
        _REMOVED.add(pattern)


def sweep() -> None:
    """Delete again what :func:`remove_owned` deleted, in case it reappeared; called just
    before the process ends after an interruption."""
    for pattern in _REMOVED:
        for path in glob.glob(pattern):
            with contextlib.suppress(OSError):
                _remove(Path(path))


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files and folders in ``folder`` whose writing process is gone.

    They are left by runs that were killed (``kill -9``, a power cut) before they could clean
    up; each removal is logged. Temporaries of live processes (another run writing now, or
    this one) are kept.

    Returns:
        The paths removed.
    """
    folder = Path(folder)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    alive: dict[int, bool] = {}
    for entry in entries:
        if entry.name.endswith(CLAIM_SUFFIX):
            claimed_by = _claim_owner(Path(entry.path))
            if claimed_by is not None and claimed_by != os.getpid() and not _process_alive(
                claimed_by
            ):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                logger.warning("removed %s, left by an interrupted run (process %d)",
                               entry.path, claimed_by)
                removed.append(Path(entry.path))
            continue
        pid = owner_pid(entry.name)
        if pid is None and _UNOWNED.match(entry.name):
            logger.warning("%s looks like a temporary file of an older sarcolor run; delete it "
                           "if no sarcolor is writing here", entry.path)
        if pid is None or pid == os.getpid():
            continue
        if pid not in alive:
            alive[pid] = _process_alive(pid)
        if alive[pid]:
            continue
        path = Path(entry.path)
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path)
            else:
                path.unlink()
        except FileNotFoundError:
            continue  # another run cleaned it at the same moment
        except OSError as error:
            logger.warning("cannot remove %s, left by an interrupted run: %s", path, error)
            continue
        logger.warning("removed %s, left by an interrupted run (process %d)", path, pid)
        removed.append(path)
    return removed


CLAIM_SUFFIX = f".{MARK}-claim"


def claim_path(path: str | os.PathLike[str]) -> Path:
    """The claim file of the output ``path``: hidden, beside it."""
    path = Path(path)
    return path.with_name(f".{path.name}{CLAIM_SUFFIX}")


def _claim_owner(claim: Path) -> int | None:
    try:
        return int(claim.read_text().strip() or "0") or None
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def claim(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold the output ``path`` for this run, from before the work until the block ends.

    Another run that claims the same path meanwhile is refused at once (it would otherwise
    compute everything and only fail at the final rename). A claim left by a process that is
    gone is taken over, with a warning. Claiming a path this process already holds is allowed
    (nested writers of one run).

    Raises:
        OutputExistsError: another live run holds ``path``.
        OutputError: the claim cannot be created (the folder is not writable).
    """
    path = Path(path)
    marker = claim_path(path)
    make_folder(path.parent)
    for _ in range(2):
        try:
            descriptor = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            owner = _claim_owner(marker)
            if owner == os.getpid():
                yield path  # already ours: the outer claim releases it
                return
            if owner is not None and _process_alive(owner):
                raise OutputExistsError(
                    f"{path} is being written by another run (process {owner}); wait for it "
                    "to finish, or choose another output"
                ) from None
            logger.warning("removed %s, left by an interrupted run (process %s)", marker, owner)
            with contextlib.suppress(FileNotFoundError):
                marker.unlink()
            continue
        except OSError as error:
            raise OutputError(
                f"{path}: cannot write in {path.parent} ({error.strerror or error})"
            ) from None
        break
    else:  # pragma: no cover - a third run took it between our two attempts
        raise OutputExistsError(f"{path} is being written by another run; choose another output")
    try:
        os.write(descriptor, str(os.getpid()).encode())
    finally:
        os.close(descriptor)
    try:
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            marker.unlink()


def _renameat2(source: Path, target: Path, flags: int) -> bool:
    """``renameat2`` with ``flags``; False where the system or file system lacks it."""
    function = getattr(_libc(), "renameat2", None)
    if function is None:
        return False
    result = function(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), flags)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(target))


_LIBC: ctypes.CDLL | None = None


def _libc() -> ctypes.CDLL | None:
    global _LIBC
    if _LIBC is None and os.name == "posix":
        with contextlib.suppress(OSError):
            _LIBC = ctypes.CDLL(None, use_errno=True)
    return _LIBC


def _exists(path: Path) -> bool:
    return path.exists() or path.is_symlink()


def exists_message(path: Path) -> str:
    return f"{path} exists; pass --overwrite to replace it"


def publish(temporary: str | os.PathLike[str], target: str | os.PathLike[str],
            overwrite: bool = False) -> None:
    """Rename the finished ``temporary`` (file or folder) to ``target`` in one step.

    Args:
        temporary: the complete file or folder, beside ``target``.
        target: the output.
        overwrite: replace an existing ``target``; without it the rename is exclusive.

    Raises:
        OutputExistsError: ``target`` exists (or appeared since the run started) and
            ``overwrite`` is False; ``temporary`` is left for the caller to delete.
        OutputError: the rename failed (permissions, file system).
    """
    temporary, target = Path(temporary), Path(target)
    try:
        if not overwrite:
            _publish_exclusive(temporary, target)
        elif temporary.is_dir() and _exists(target):
            _swap_folder(temporary, target)
        else:
            os.replace(temporary, target)
    except FileExistsError:
        raise OutputExistsError(
            f"{target} was created by another run meanwhile; pass --overwrite to replace it"
        ) from None
    except OSError as error:
        if error.errno in (errno.EEXIST, errno.ENOTEMPTY):
            raise OutputExistsError(
                f"{target} was created by another run meanwhile; pass --overwrite to replace it"
            ) from None
        raise write_error(target, error) from None


def _publish_exclusive(temporary: Path, target: Path) -> None:
    if _exists(target):
        raise FileExistsError(errno.EEXIST, "exists", str(target))
    if _renameat2(temporary, target, _RENAME_NOREPLACE):
        return
    if temporary.is_dir():
        # No exclusive rename here: a folder renamed onto an empty folder would replace it.
        if _exists(target):
            raise FileExistsError(errno.EEXIST, "exists", str(target))
        os.rename(temporary, target)
        return
    os.link(temporary, target)  # fails if target exists: exclusive
    temporary.unlink()


def _swap_folder(temporary: Path, target: Path) -> None:
    """Put the folder ``temporary`` at ``target`` and delete the previous ``target``."""
    if _renameat2(temporary, target, _RENAME_EXCHANGE):
        _remove(temporary)  # now the previous output
        return
    aside = temporary_path(target, "old")
    os.rename(target, aside)
    try:
        os.rename(temporary, target)
    except BaseException:
        try:
            os.rename(aside, target)
        except OSError:
            logger.error("the previous %s is kept as %s; rename it back", target, aside)
        raise
    _remove(aside)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def check_target(path: str | os.PathLike[str], overwrite: bool) -> Path:
    """Refuse an existing output unless ``overwrite``; returns ``path`` as a Path.

    Raises:
        OutputExistsError: ``"<path> exists; pass --overwrite to replace it"``.
    """
    path = Path(path)
    if _exists(path) and not overwrite:
        raise OutputExistsError(exists_message(path))
    return path


#: A write that fails with less free space than this left is taken as a full disk (GDAL's
#: messages do not carry the system's error code).
FULL_DISK_BYTES = 1 << 20


def write_error(path: str | os.PathLike[str], error: BaseException | str) -> OutputError:
    """The one-line :class:`OutputError` for a failed write of ``path``.

    A full disk is named as such, with the folder and its file system's free space (ENOSPC,
    or a failure with under :data:`FULL_DISK_BYTES` left: GDAL reports "Write failed" without
    the cause); anything else keeps the system's or GDAL's reason.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    reason = getattr(error, "strerror", None) or str(error)
    full = getattr(error, "errno", None) == errno.ENOSPC or "No space left" in str(error)
    free = None
    with contextlib.suppress(OSError):
        free = shutil.disk_usage(folder).free
        full = full or free < FULL_DISK_BYTES
    reason = reason.splitlines()[0] if reason else type(error).__name__
    if full:
        left = f", {free / 1e6:.1f} MB free" if free is not None else ""
        return OutputError(f"{path}: the disk is full in {folder.resolve()} ({reason}{left}); "
                           "free some space there or write elsewhere")
    return OutputError(f"{path}: cannot write ({reason})")


def make_folder(path: str | os.PathLike[str]) -> None:
    """Create ``path`` and its parents with the umask's mode; an OS error becomes
    :class:`OutputError` naming the folder."""
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"{path}: cannot create the folder ({error.strerror or error})") from None


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str], overwrite: bool = False,
                tag: str = "partial") -> Iterator[Path]:
    """Write a file under a temporary name beside ``path``; publish it when the block ends.

    Example::

        with atomic_file("stats.json") as temporary:
            temporary.write_text(text)

    Yields:
        The temporary path to write (it does not exist yet).

    Raises:
        OutputExistsError: ``path`` exists (or appears meanwhile) and ``overwrite`` is False.
        OutputError: the folder cannot be created or written.
    """
    path = check_target(path, overwrite)
    make_folder(path.parent)
    remove_stale(path.parent)
    temporary = temporary_path(path, tag)
    try:
        yield temporary
        if not _exists(temporary):
            raise OutputError(f"{path}: nothing was written")
        publish(temporary, path, overwrite)
    except BaseException:
        _remove(temporary)
        raise


def new_temporary_folder(path: str | os.PathLike[str], tag: str = "partial") -> Path:
    """Create (with the umask's mode) and return an owned temporary folder beside ``path``,
    after removing stale ones; the caller publishes it with :func:`publish` or deletes it.
    :func:`atomic_folder` does both."""
    path = Path(path)
    make_folder(path.parent)
    remove_stale(path.parent)
    temporary = temporary_path(path, tag)
    try:
        temporary.mkdir()
    except OSError as error:
        raise write_error(path, error) from None
    return temporary


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike[str], overwrite: bool = False,
                  tag: str = "partial") -> Iterator[Path]:
    """Fill a temporary folder beside ``path``; publish it when the block ends.

    The folder is created (with the umask's mode) before the block runs; on an error or an
    interruption it is deleted with its content, and ``path`` is untouched.

    Yields:
        The temporary folder.

    Raises:
        OutputExistsError: ``path`` exists (or appears meanwhile) and ``overwrite`` is False.
        OutputError: the folder cannot be created or written.
    """
    path = check_target(path, overwrite)
    temporary = new_temporary_folder(path, tag)
    try:
        yield temporary
        publish(temporary, path, overwrite)
    except BaseException:
        _remove(temporary)
        raise


# GDAL sidecars -------------------------------------------------------------------------------


def named_sidecars(path: Path) -> list[Path]:
    """``<name>.aux.xml`` (GDAL PAM), ``<name>.msk`` (mask), ``<name>.ovr`` (overviews)."""
    return [path.with_name(path.name + suffix) for suffix in _SIDECAR_SUFFIXES]


def world_file_path(path: str | os.PathLike[str]) -> Path:
    """The world file of an image, by the usual naming: ``scene.png`` -> ``scene.pgw``,
    ``scene.jpg`` -> ``scene.jgw``, ``scene.tif`` -> ``scene.tfw``.

    GDAL writes world files as ``<stem>.wld``, a name that images of other formats with the
    same stem would share; the writers rename it to this format-specific name, which GDAL,
    QGIS and ArcGIS look for first.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if len(suffix) < 3:
        return path.with_suffix(".wld")
    return path.with_suffix(f".{suffix[1]}{suffix[-1]}w")


def world_file_candidates(path: Path) -> list[Path]:
    candidates = [path.with_suffix(".wld"), world_file_path(path), path.with_suffix(path.suffix + "w")]
    return list(dict.fromkeys(candidates))


def remove_with_sidecars(path: Path) -> None:
    """Delete a raster file and every sidecar GDAL wrote beside it (missing ones are fine)."""
    if owner_pid(path) is not None:  # a temporary: everything GDAL wrote beside it goes too
        remove_owned(path)
    for candidate in [path, *named_sidecars(path), *world_file_candidates(path)]:
        with contextlib.suppress(OSError):  # absent; or a cleanup on a failing disk
            candidate.unlink()


def publish_with_sidecars(temporary: Path, path: Path, overwrite: bool = True) -> None:
    """Rename ``temporary`` and its sidecars to ``path``; stale sidecars of ``path`` go.

    Sidecars left beside ``path`` by an earlier file of that name would describe the new one
    wrongly (an old CRS in ``.aux.xml``), so those the new file does not replace are deleted.
    Without ``overwrite`` the image is published first, exclusively (another run that wrote
    ``path`` meanwhile keeps its output and its sidecars); with it the image goes last, so
    that once it is there so are its sidecars.
    """
    if not overwrite:
        publish(temporary, path, overwrite=False)
    for old, new in zip(named_sidecars(temporary), named_sidecars(path), strict=True):
        if old.exists():
            os.replace(old, new)
        elif new.exists():
            logger.info("removing %s, left from an earlier %s", new, path.name)
            new.unlink()
    world_files = [p for p in world_file_candidates(temporary) if p.exists()]
    target = world_file_path(path)
    if world_files:
        os.replace(world_files[0], target)
        for extra in world_files[1:]:
            extra.unlink()
    elif target.exists():
        logger.info("removing %s, left from an earlier %s", target, path.name)
        target.unlink()
    if overwrite:
        publish(temporary, path, overwrite=True)
