"""Progress on stderr: a live bar on a terminal, a plain line now and then everywhere else.

tqdm hides its bar when stderr is not a terminal, so logs, CI and captured notebook output
showed nothing for minutes. Off a terminal :func:`progress_bar` prints one line at the start,
then at most one every :data:`LINE_INTERVAL` seconds, and one at the end, each with the count,
the rate and the time left::

    scene.tif: 120/480 tiles (25%) after 00:31, 3.87 tiles/s, 01:33 left

(no carriage returns, no bar characters: each line reads on its own in a log file).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import IO, Any

#: Seconds between two progress lines when stderr is not a terminal.
LINE_INTERVAL = 30.0

LINE_FORMAT = (
    "{desc}: {n_fmt}/{total_fmt}{unit} ({percentage:.0f}%) after {elapsed}, {rate_noinv_fmt}, "
    "{remaining} left"
)


class _Lines:
    """A file for tqdm that turns its carriage-return redraws into whole lines."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.last = ""

    def write(self, text: str) -> int:
        for part in text.replace("\r", "\n").split("\n"):
            line = " ".join(part.split())  # tqdm pads the rate to a fixed width
            if line and line != self.last:
                self.stream.write(line + "\n")
                self.last = line
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def __getattr__(self, name: str) -> Any:  # encoding, fileno, ... of the stream
        return getattr(self.stream, name)


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def progress_bar(
    iterable: Iterable[Any] | None = None,
    *,
    total: int | None = None,
    desc: str,
    unit: str,
    enabled: bool = True,
    leave: bool = True,
    stream: IO[str] | None = None,
    interval: float = LINE_INTERVAL,
) -> Any:
    """A tqdm progress bar over ``iterable`` (or updated by hand up to ``total``).

    Args:
        desc: what progresses (a file name, a command).
        unit: the plural of what is counted ("tiles", "images", "scenes").
        enabled: False (``-q``) shows nothing.
        leave: keep the finished bar on a terminal (lines off a terminal always stay).
        stream: where to write; stderr by default.
        interval: the least seconds between two lines off a terminal.
    """
    stream = stream if stream is not None else sys.stderr
    if not enabled:
        from tqdm import tqdm

        return tqdm(iterable, total=total, disable=True)
    if _is_terminal(stream):
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, desc=desc, unit=unit.rstrip("s"), leave=leave,
                    dynamic_ncols=True, file=stream)
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=f" {unit}", file=_Lines(stream),
                mininterval=interval, maxinterval=max(interval, 10.0), miniters=1,
                bar_format=LINE_FORMAT, ascii=True, leave=True)
