"""The one source of hyperparameters: the paper's models and acquisition, recipes, experiments.

* `rinq_jax.configs.models`: model names, input kinds and their channels, patch sizes, and the
  paper's learning rate and batch size per model (Hoppe, Thamm et al. 2019, Table 5);
* `rinq_jax.configs.recipes`: the ``paper`` and ``rinq`` training recipes and the default run
  length per model;
* `rinq_jax.configs.data`: the paper's acquisition (FOV, matrix, repetitions, undersampling,
  dictionary rank), the data presets (sizes of the generated datasets) and where the default
  datasets live;
* `rinq_jax.configs.train`: `get_config`, a recipe's whole `TrainConfig` for a model, which
  train.py and the experiments start from;
* `rinq_jax.configs.experiments`: the rows of Table 1 and the learning-curve runs.

`train.py`, `rinq_jax.models.registry`, `rinq_jax.training.config` and the experiments read
these; nothing else restates them. Only `configs.train` and `configs.experiments` import from
the rest of rinq_jax (the `TrainConfig` they fill).
"""
