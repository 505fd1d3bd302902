"""Scanner raw data: ISMRMRD export of simulated k-space and import of raw scans into slice files."""
