"""MR physics: FISP MRF sequence, EPG simulation, dictionary building and matching."""
