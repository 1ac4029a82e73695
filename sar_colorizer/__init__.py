"""sarcolor: colorize Sentinel-1 SAR images with a network trained on Sentinel-1 / Sentinel-2 pairs.

Importing this package is cheap: TensorFlow is imported only by the functions that need it.
The public API (:mod:`sar_colorizer.api`) is loaded on first use::

    import sar_colorizer as sc
    model = sc.load_model()                      # the shipped model, or a bundle folder
    rgba = sc.colorize(sar_array, model)         # numpy (H, W) / (C, H, W) -> (H, W, 4) uint8
    sc.colorize_file("scene_VH.tif", "scene.tif", model)
    coloured = sc.colorize_dataarray(rioxarray.open_rasterio("scene_VH.tif", chunks=2048))
    report = sc.evaluate("pairs/", "report/", model)

Many files in one run, as ``sarcolor predict --output-dir`` does: :mod:`sar_colorizer.batch`.
"""

from typing import TYPE_CHECKING, Any

from sar_colorizer.version import __version__

if TYPE_CHECKING:  # what IDEs and type checkers see; at run time the names load lazily
    from sar_colorizer.api import (
        colorize,
        colorize_dataarray,
        colorize_file,
        evaluate,
        load_model,
    )


__all__ = [
    "__version__",
    "load_model",
    "colorize",
    "colorize_file",
    "colorize_dataarray",
    "evaluate",
]
_API = frozenset(__all__) - {"__version__"}


def __getattr__(name: str) -> Any:
    if name in _API:
        from sar_colorizer import api

        return getattr(api, name)
    raise AttributeError(f"module 'sar_colorizer' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _API)
