"""How it is stored: the HDF5 slice format, reading and writing, NIfTI maps, a dataset's protocol file."""
