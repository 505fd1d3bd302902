"""Shared pytest set-up: small, deterministic fixtures for every test module."""

import os

# Tests run on the CPU; 2 virtual host devices let data-parallel steps be tested here.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
