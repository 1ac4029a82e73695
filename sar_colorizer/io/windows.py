"""Windows of a raster: a ``rasterio.windows.Window`` from what callers pass, checked to lie inside."""

from __future__ import annotations

from collections.abc import Sequence

from rasterio.windows import Window

from sar_colorizer.errors import RasterError

__all__ = ["as_window", "check_window"]


def as_window(window: Window | Sequence[Sequence[int]] | None) -> Window | None:
    """A Window from a Window, ``((row_start, row_stop), (col_start, col_stop))`` or None."""
    if window is None or isinstance(window, Window):
        return window
    return Window.from_slices(*window)


def check_window(window: Window, width: int, height: int, where: object) -> Window:
    """``window`` with whole-pixel offsets and sizes, inside a ``width`` x ``height`` raster.

    Raises:
        RasterError: fractional offsets or sizes, or a window outside the raster.
    """
    col, row = int(window.col_off), int(window.row_off)
    w, h = int(window.width), int(window.height)
    if (col, row, w, h) != (window.col_off, window.row_off, window.width, window.height):
        raise RasterError(f"{where}: window {window} must have whole-pixel offsets and sizes")
    if w <= 0 or h <= 0 or col < 0 or row < 0 or col + w > width or row + h > height:
        raise RasterError(
            f"{where}: window (col {col}, row {row}, {w} x {h}) lies outside the "
            f"{width} x {height} raster"
        )
    return Window(col, row, w, h)

