"""SAR radiometry and speckle filtering."""
