"""MRF data along its flow, one sub-package per stage.

``subjects`` (what is imaged: anatomy, tissues and their values, phantoms, B1) ->
``acquisition`` (how it is sampled: spiral or a scanner's trajectory, NUFFT, gridding, coils, the
fast compartment path) -> ``datasets`` (the generators writing slices) -> ``files`` (the HDF5
slice format, NIfTI, a dataset's protocol) -> ``pipeline`` (transforms, splits, loader, the
training stream); ``raw`` moves scanner raw data (ISMRMRD) in and out.
"""
