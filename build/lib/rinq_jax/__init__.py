"""rinq_jax: RinQ Fingerprinting (Hoppe, Thamm et al., MICCAI 2019) in JAX/Flax.

Data flows physics -> data -> models -> training -> evaluation; each concern is
one sub-package of the same name.
"""

__version__ = "0.1.0"
