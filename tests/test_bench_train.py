"""benchmarks/bench_train.py: the FLOPs its fractions of the matmul rate divide by (no timing)."""

import pytest

from tests.conftest import load_benchmark


@pytest.fixture(scope="module")
def bench_train():
    return load_benchmark("bench_train")


def _two_layers(trainable_first: bool = True):
    import keras

    inputs = keras.Input((512,))
    hidden = keras.layers.Dense(256, use_bias=False, trainable=trainable_first, name="first")(inputs)
    return keras.Model(inputs, keras.layers.Dense(4, use_bias=False, name="second")(hidden))


def test_step_counts_no_input_gradient_below_the_first_trained_layer(bench_train):
    # A [8, 512] batch through two bias-free dense layers: matmuls of 2·m·k·n FLOPs each.
    batch, inputs, hidden, outputs = 8, 512, 256, 4
    first, second = 2 * batch * inputs * hidden, 2 * batch * hidden * outputs
    forward = bench_train.forward_flops(_two_layers(), (batch, inputs))
    step = bench_train.step_flops(_two_layers(), (batch, inputs))
    # The forward pass, both weight gradients, and the input gradient of the second layer
    # only: nothing differentiates the network's input. The loss's sum adds a few FLOPs.
    expected = (first + second) + (first + second) + second
    assert forward == pytest.approx(first + second, rel=1e-3)
    assert step == pytest.approx(expected, rel=1e-3)
    # Three forward passes, the convention of earlier versions, would count one more
    # [512 x 256] matmul: 1.5 times as much for this network.
    assert 3 * forward > 1.4 * step


def test_step_of_a_frozen_layer_counts_its_forward_pass_only(bench_train):
    batch, inputs, hidden, outputs = 8, 512, 256, 4
    first, second = 2 * batch * inputs * hidden, 2 * batch * hidden * outputs
    step = bench_train.step_flops(_two_layers(trainable_first=False), (batch, inputs))
    # The frozen first layer runs forward only; the second trains its weights and needs no
    # input gradient either, since nothing below it trains.
    assert step == pytest.approx(first + second + second, rel=1e-3)
