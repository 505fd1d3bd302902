"""The paper's networks (CNN1, RNN1, RNN3), DRONE and the quantile layer."""
