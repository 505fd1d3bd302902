"""In-vivo-like MRF data: phantoms, spiral acquisition, the HDF5 format and the patch loader."""

from rinq_jax.configs.data import DEFAULT_DATA_DIR, QUICK_DATA_DIR

__all__ = ["DEFAULT_DATA_DIR", "QUICK_DATA_DIR"]
