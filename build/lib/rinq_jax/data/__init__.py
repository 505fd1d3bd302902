"""In-vivo-like MRF data: phantoms, spiral acquisition, the HDF5 format and the patch loader."""

from pathlib import Path

# Where `train.py` without --data generates (once) and finds the quick dataset.
QUICK_DATA_DIR = Path("data/quick")

# Where `train.py` without --data generates (once) and finds the default brain dataset
# (`rinq_jax.data.synthetic`, preset "brain").
DEFAULT_DATA_DIR = Path("data/brain")
