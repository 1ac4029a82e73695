"""sarcolor: colorize Sentinel-1 SAR images with a network trained on Sentinel-1 / Sentinel-2 pairs.

Importing this package is cheap: TensorFlow is imported only by the functions that need it.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
