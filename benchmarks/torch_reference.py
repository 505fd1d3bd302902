"""PyTorch twins of rinq_jax's CNN1, RNN1 and RNN3: the benchmark's reference (never imported by rinq_jax).

Same layer sizes, the same order of ReLU and BatchNorm, the same chunking, BatchNorm with Keras'
momentum/epsilon (PyTorch momentum = 1 - 0.99) and the same parameter counts, except:

* the LSTM is PyTorch's ``nn.LSTM`` (its fastest CPU path, oneDNN), which keeps two bias vectors
  (``bias_ih`` and ``bias_hh``) where rinq_jax keeps one: ``4 * H`` parameters more (4,000 for
  RNN1, 2,000 for RNN3) and nothing the model can express differently; `check_param_counts`
  asserts exactly this difference.
* CNN1 runs channels-first (``Conv1d`` on ``[B, C, T]``), PyTorch's native layout, so its flatten
  order differs from rinq_jax's time-major one; the parameter count is identical.

Shapes: inputs are ``float32[B, P, P, T, C]`` like rinq_jax's, outputs ``float32[B, 2]``.
"""

from __future__ import annotations

import torch
from torch import nn

BN_MOMENTUM = 1 - 0.99  # Keras momentum 0.99 is PyTorch's 0.01 (weight of the new batch)
BN_EPSILON = 1e-3
CONV_LAYERS = ((30, 15, 5), (60, 10, 3), (120, 5, 2), (240, 3, 2))


def _bn(features: int) -> nn.BatchNorm1d:
    return nn.BatchNorm1d(features, eps=BN_EPSILON, momentum=BN_MOMENTUM)


def _bn_steps(bn: nn.BatchNorm1d, h: torch.Tensor) -> torch.Tensor:
    """BatchNorm of [B, S, F] over batch and steps together (Keras BN on the last axis)."""
    b, s, f = h.shape
    return bn(h.reshape(b * s, f)).reshape(b, s, f)


def chunk_signal(x: torch.Tensor, n_steps: int) -> torch.Tensor:
    """float32[B, P, P, T, C] -> float32[B, S, P*P*(T/S)*C], as ``rinq_jax.models.lstm.chunk_signal``."""
    b, p0, p1, t, c = x.shape
    x = x.reshape(b, p0, p1, n_steps, t // n_steps, c).permute(0, 3, 1, 2, 4, 5)
    return x.reshape(b, n_steps, p0 * p1 * (t // n_steps) * c)


class CNN1(nn.Module):
    """Table 4: 4 x (Conv -> BN -> ReLU), AvgPool, 3 x (FC -> BN -> ReLU), FC 2."""

    def __init__(self, channels: int = 2, n_time: int = 3000):
        super().__init__()
        layers, c, t = [], channels, n_time
        for features, kernel, stride in CONV_LAYERS:
            layers += [nn.Conv1d(c, features, kernel, stride), _bn(features), nn.ReLU()]
            c, t = features, (t - kernel) // stride + 1
        layers += [nn.AvgPool1d(3, 2), nn.Flatten()]
        f = c * ((t - 3) // 2 + 1)
        for features in (1000, 500, 300):
            layers += [nn.Linear(f, features), _bn(features), nn.ReLU()]
            f = features
        layers.append(nn.Linear(f, 2))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x float32[B, 1, 1, T, C] -> float32[B, 2]."""
        return self.net(x[:, 0, 0].transpose(1, 2))  # [B, C, T]


class _RecurrentTrunk(nn.Module):
    """Chunk -> LSTM -> ReLU, BN -> FC 500 / 250 per step (ReLU, BN) -> flatten -> FC 360 (ReLU, BN)."""

    def __init__(self, features: int, hidden: int, n_steps: int = 30):
        super().__init__()
        self.n_steps = n_steps
        self.lstm = nn.LSTM(features, hidden, batch_first=True)
        self.bn_lstm, self.fc1, self.bn_fc1 = _bn(hidden), nn.Linear(hidden, 500), _bn(500)
        self.fc2, self.bn_fc2 = nn.Linear(500, 250), _bn(250)
        self.fc3, self.bn_fc3 = nn.Linear(n_steps * 250, 360), _bn(360)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.lstm(chunk_signal(x, self.n_steps))
        h = _bn_steps(self.bn_lstm, torch.relu(h))
        h = _bn_steps(self.bn_fc1, torch.relu(self.fc1(h)))
        h = _bn_steps(self.bn_fc2, torch.relu(self.fc2(h)))
        return self.bn_fc3(torch.relu(self.fc3(h.flatten(1))))


class RNN1(nn.Module):
    """Table 2: one pixel, LSTM 1000, linear FC 2 output."""

    def __init__(self, channels: int = 2, n_time: int = 3000, n_steps: int = 30):
        super().__init__()
        self.trunk = _RecurrentTrunk(channels * n_time // n_steps, 1000, n_steps)
        self.fc4 = nn.Linear(360, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x float32[B, 1, 1, T, C] -> float32[B, 2]."""
        return self.fc4(self.trunk(x))


class RNN3(nn.Module):
    """Table 3: 3x3 patch, LSTM 500, FC 2 shared by the 9 neighbours, median over them."""

    def __init__(self, channels: int = 2, n_time: int = 3000, n_steps: int = 30):
        super().__init__()
        self.trunk = _RecurrentTrunk(9 * channels * n_time // n_steps, 500, n_steps)
        self.fc4 = nn.Linear(40, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x float32[B, 3, 3, T, C] -> float32[B, 2]."""
        y = self.fc4(self.trunk(x).reshape(x.shape[0], 9, 40))  # [B, 9, 2]
        # n = 9 is odd: the median is one element and its gradient is one-hot, as Q^T.
        return y.median(dim=1).values


MODELS = {"cnn1": CNN1, "rnn1": RNN1, "rnn3": RNN3}
LSTM_HIDDEN = {"cnn1": 0, "rnn1": 1000, "rnn3": 500}


def build(name: str, channels: int = 2, n_time: int = 3000) -> nn.Module:
    """The PyTorch twin of ``rinq_jax.models.get_model(name, 'complex')``."""
    return MODELS[name](channels=channels, n_time=n_time)


def count_params(model: nn.Module) -> int:
    """Trainable parameters (BN's running statistics are buffers, as rinq_jax's batch_stats)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def check_param_counts(name: str, model: nn.Module, jax_count: int) -> int:
    """Assert the counts agree up to nn.LSTM's second bias (4H); return the difference."""
    extra = 4 * LSTM_HIDDEN[name]
    torch_count = count_params(model)
    if torch_count != jax_count + extra:
        raise AssertionError(
            f"{name}: torch has {torch_count} parameters, rinq_jax {jax_count} (+{extra} expected)"
        )
    return extra


def make_train_step(
    model: nn.Module, learning_rate: float, bf16: bool = False, device_type: str = "cpu"
):
    """Adam (beta 0.9, 0.999) on the MSE: ``step(x, y) -> loss`` (a float tensor).

    ``bf16``: the forward pass under ``torch.autocast(device_type, torch.bfloat16)``,
    PyTorch's mixed precision (float32 parameters and optimiser, as rinq_jax's
    ``matmul_dtype``). ``device_type``: "cpu" or "cuda", where the model lies.
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate, betas=(0.9, 0.999))
    loss_fn = nn.MSELoss()

    def step(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=bf16):
            pred = model(x)
        loss = loss_fn(pred.float(), y)
        loss.backward()
        optimizer.step()
        return loss.detach()

    model.train()
    return step
