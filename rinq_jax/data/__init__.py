"""In-vivo-like MRF data: phantoms, spiral acquisition, the HDF5 format and the patch loader."""
