"""The synthetic mammogram generator: phantoms and a CBIS-DDSM-shaped folder writer for demos and tests."""
