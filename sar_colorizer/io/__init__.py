"""Raster input/output and tiling."""
