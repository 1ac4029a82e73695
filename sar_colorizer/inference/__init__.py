"""Colorize SAR images with a trained model bundle: in memory, or streamed over whole scenes.

The data flow, identical for both paths (:func:`colorize_array` for images in memory, used by
evaluation; :func:`colorize_raster` for scene-sized rasters on disk)::

    raw values (C, H, W)  --to_linear_power(scale)-->  linear power (NaN at nodata)
      --Normalization.apply(scene reference)-->        relative intensity in [0, 1]
      --apply_speckle_filter(bundle's filter)-->        filtered relative intensity (0 at nodata)
      --model (tiles resampled to the training pixel size, batched)--> low-resolution AB
      --guided upsampling by the display feature-->    normalised AB in [-1, 1], x AB_SCALE
    relative --apply_display_filter (sar.display)--> display relative intensity
      --relative_to_feature--> dB feature in [0, 1] --tone curve--> L in [0, 100]
    L + AB --chroma limit (color.gamut)--> --lab_to_rgb--> sRGB uint8, alpha 0 on nodata

L is made from a display filter of the SAR (:mod:`sar_colorizer.sar.display`), separate from
the speckle filter the network was trained with, which keeps feeding the network unchanged
("network" uses that filter for L too). The network's low-resolution AB is upsampled guided by
the display feature (:mod:`sar_colorizer.color.upsampling`).

The recipe lives once, in :class:`~sar_colorizer.inference.core.SceneColourer` (an object that
colours one window of a scene: prepare -> infer -> finish), built from one frozen
:class:`~sar_colorizer.inference.options.ColourOptions` resolved once against the bundle; the
in-memory, streamed, dask and batch paths are schedulers over it. One module per step:

- :mod:`~sar_colorizer.inference.options`: the options, their defaults, resolved per bundle;
- :mod:`~sar_colorizer.inference.core`: the colourer of a scene's windows;
- :mod:`~sar_colorizer.inference.scene`: scene statistics and preprocessing (raw values ->
  network input and L's source);
- :mod:`~sar_colorizer.inference.tone`: the tone curve (dB feature -> L);
- :mod:`~sar_colorizer.inference.runner`: the network (batches of tiles -> upsampled output);
- :mod:`~sar_colorizer.inference.tiles`: the tiling driver (tiles -> blended scene rows);
- :mod:`~sar_colorizer.inference.colour`: L + AB -> LAB and sRGB (XLA-compiled);
- :mod:`~sar_colorizer.inference.array`: :func:`colorize_array` (the whole image, one window);
- :mod:`~sar_colorizer.inference.plan`, :mod:`~sar_colorizer.inference.stream`,
  :mod:`~sar_colorizer.inference.outputs`, :mod:`~sar_colorizer.inference.quicklook` and
  :mod:`~sar_colorizer.inference.raster`: :func:`colorize_raster` (plan -> stream strips with
  reader and writer threads -> finish).

TensorFlow is imported only inside the functions that run the model or convert colours.
"""

from sar_colorizer.inference.array import colorize_array
from sar_colorizer.inference.colour import AB_SCALE, DISPLAY_FILTER
from sar_colorizer.inference.core import SceneColourer
from sar_colorizer.inference.options import ColourOptions, Recipe
from sar_colorizer.inference.raster import PredictSummary, colorize_raster
from sar_colorizer.inference.runner import BATCH_PIXELS, tiles_per_call
from sar_colorizer.inference.scene import (
    STATS_MAX_SIDE,
    InputSpec,
    SceneStatistics,
    prepare_sar,
    scene_statistics,
)
from sar_colorizer.inference.tiles import tile_settings
from sar_colorizer.inference.tone import TONES, tone_lut

__all__ = [
    "AB_SCALE",
    "BATCH_PIXELS",
    "DISPLAY_FILTER",
    "ColourOptions",
    "Recipe",
    "SceneColourer",
    "STATS_MAX_SIDE",
    "TONES",
    "InputSpec",
    "PredictSummary",
    "SceneStatistics",
    "colorize_array",
    "colorize_raster",
    "prepare_sar",
    "scene_statistics",
    "tile_settings",
    "tiles_per_call",
    "tone_lut",
]
