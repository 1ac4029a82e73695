"""Colour a Sentinel-1 scene the notebook way: rioxarray in, xarray out, GeoTIFF written.

Run it as a script (``python examples/notebook_xarray.py [OUTPUT_DIR]``) or paste the cells
into a notebook. Needs ``pip install ".[xarray,dask]"`` in the sarcolor folder.
"""

# %% Open a scene lazily, in chunks (nothing is read yet).
import sys
import tempfile
from pathlib import Path

import numpy as np
import rioxarray

import sar_colorizer as sc

SAMPLE = (
    Path(__file__).resolve().parents[1]
    / "data/samples/spatialist-s1-vv-db/S1A__IW___D_20170309T054356_VV_grd_mli_geo_norm_db.tif"
)
out_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp())
out_dir.mkdir(parents=True, exist_ok=True)

sar = rioxarray.open_rasterio(SAMPLE, chunks={"y": 128, "x": 128})
print(sar.dims, sar.shape, sar.rio.crs, "nodata", sar.rio.nodata)

# %% Colour it: a lazy RGBA DataArray with the scene's coordinates, CRS and transform.
model = sc.load_model("default")  # the shipped model (trained on VH; this sample is VV)
colour = sc.colorize_dataarray(sar, model)
print(colour.dims, colour.band.values, colour.rio.crs, colour.rio.transform() == sar.rio.transform())

# %% Compute chunk by chunk and write a georeferenced GeoTIFF.
colour = colour.compute()
colour.rio.to_raster(out_dir / "camargue_colour.tif")
print("wrote", out_dir / "camargue_colour.tif")

# %% The same colours as `sarcolor predict` (and as sc.colorize on a numpy array, which has no
# georeference: give it the pixel size, 20 m here, that the DataArray's transform tells).
pixel_size = abs(sar.rio.resolution()[0])  # metres: the CRS is UTM
rgba = sc.colorize(sar.values, model, nodata=sar.rio.nodata, pixel_size=pixel_size)
assert np.array_equal(rgba.transpose(2, 0, 1), colour.values)
print("identical to the in-memory result:", rgba.shape)
