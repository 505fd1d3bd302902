"""The paper's models, their inputs and their training hyperparameters (Table 5).

Hoppe, Thamm et al. 2019, supplementary Table 5 (Adam, beta1 = 0.9, beta2 = 0.999):

=====  =========  ==============  ==========
model  input      learning rate   batch size
=====  =========  ==============  ==========
cnn1   magnitude  5e-5            128
cnn1   complex    5e-5            128
rnn1   magnitude  5e-5            128
rnn1   complex    1e-3            128
rnn3   complex    1e-4            32
drone  both       1e-3            128   (ours: Adam's customary default; see below)
=====  =========  ==============  ==========

RNN3 exists only for complex input in the paper; ``("rnn3", "magnitude")`` is not defined.
DRONE (Cohen et al. 2018) is not in Table 5; its authors train with Adam but at a step size the
RinQ paper does not report, so we use 1e-3 with the paper's usual batch size 128.
"""

from __future__ import annotations

MODEL_NAMES = ("cnn1", "rnn1", "rnn3", "drone")

# input kind -> channels C of the network input (complex: real and imaginary part)
INPUT_CHANNELS = {"complex": 2, "magnitude": 1}
INPUT_KINDS = tuple(INPUT_CHANNELS)

# model -> P: the network sees a P x P patch of pixels (the quantile layer's 3 x 3 for RNN3)
PATCH_SIZE = {"cnn1": 1, "rnn1": 1, "rnn3": 3, "drone": 1}

# the models that can also read a measured B1 map (`TrainConfig.b1_input`; not in the paper)
B1_INPUT_MODELS = ("rnn1", "rnn3")

# (model, input kind) -> (Adam learning rate, batch size): Table 5
TABLE5 = {
    ("cnn1", "magnitude"): (5e-5, 128),
    ("cnn1", "complex"): (5e-5, 128),
    ("rnn1", "magnitude"): (5e-5, 128),
    ("rnn1", "complex"): (1e-3, 128),
    ("rnn3", "complex"): (1e-4, 32),
    ("drone", "magnitude"): (1e-3, 128),
    ("drone", "complex"): (1e-3, 128),
}
