"""Build a registered network (`avdistill.networks.registry`) and check what it returns.

The builder named by the declaration is imported here, called with `sample_length` and
the options it declares among `crop_size`, `trainable`, `num_classes` and `head_init`,
and its model is checked against the pipeline's input shapes and the logits the trainers expect, so a
network of the user's that does not fit fails at once with one message naming its module,
the network and the expected shape.
"""

from __future__ import annotations

import importlib
import inspect

import keras
from keras import layers

from avdistill.constants import NUM_ACTIONS, VIDEO_CROP_SIZE
from avdistill.networks import registry


class NetworkError(ValueError):
    """A network's builder cannot be imported or builds a model that does not fit."""


def builder_function(network: registry.Network):
    """The callable the declaration names, imported now."""
    module_name, function_name = network.builder.split(":")
    where = f"network {network.name!r}: builder {network.builder!r}"
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # a user's module may fail in any way; say which one did
        raise NetworkError(
            f"{where}: module {module_name!r} failed to import ({type(error).__name__}: {error})"
        ) from error
    function = getattr(module, function_name, None)
    if not callable(function):
        raise NetworkError(f"{where}: module {module_name!r} has no function {function_name!r}")
    return function


def _check_shapes(network: registry.Network, model, sample_length: int, crop_size: int) -> None:
    where = f"network {network.name!r} (builder {network.builder})"
    if not isinstance(model, keras.Model):
        raise NetworkError(f"{where} returned {type(model).__name__}, not a keras.Model")
    expected_inputs = [(None, *registry.input_shape(name, sample_length, crop_size)) for name in network.inputs]
    got_inputs = [tuple(tensor.shape) for tensor in model.inputs]
    if sorted(got_inputs, key=str) != sorted(expected_inputs, key=str):
        raise NetworkError(
            f"{where}: inputs of shape {got_inputs}; the pipeline gives {list(network.inputs)} of shape "
            f"{expected_inputs} for {sample_length}-s samples"
        )
    expected_outputs = registry.output_shapes(network.inputs, sample_length)
    got = tuple(model.outputs[0].shape) if len(model.outputs) == 1 else [tuple(t.shape) for t in model.outputs]
    if got not in expected_outputs:
        raise NetworkError(
            f"{where}: logits of shape {got}; expected {' or '.join(map(str, expected_outputs))} "
            f"({NUM_ACTIONS} action logits per sample, or per frame)"
        )


def build_model(
    name: str,
    sample_length: int,
    crop_size: int = VIDEO_CROP_SIZE,
    trainable: str = "original",
    batch_norm_decay: float | None = None,
    head_init: str = "original",
) -> keras.Model:
    """The registered network `name` for samples of `sample_length` seconds.

    batch_norm_decay: None keeps the original's decay of each batch norm (0.997 in the
    ResNet-50s, 0.999 in SoundNet5); a value replaces it in all of them. Those decays suit
    thousands of steps from pretrained statistics; a network trained from scratch for a
    few dozen steps never gets moving averages near its batch statistics, and its
    inference-mode outputs are garbage (the moving variance still near its initial 1).
    head_init: the initialiser of the shared head (`layers.shared_net`) of the networks
    that have one; another than "original" for a builder without the option is an error.
    """
    network = registry.get(name)
    function = builder_function(network)
    offered = dict(zip(registry.BUILDER_OPTIONS, (crop_size, trainable, NUM_ACTIONS, head_init), strict=True))
    accepted = inspect.signature(function).parameters
    if head_init != "original" and "head_init" not in accepted:
        raise NetworkError(
            f"network {name!r} (builder {network.builder}) takes no head_init, so head_init {head_init!r} "
            "cannot apply: only a builder with the shared head (layers.shared_net) takes one; leave it original"
        )
    model = function(sample_length, **{key: value for key, value in offered.items() if key in accepted})
    _check_shapes(network, model, sample_length, crop_size)
    if batch_norm_decay is not None:
        if not 0.0 <= batch_norm_decay < 1.0:
            raise ValueError(f"batch_norm_decay must be in [0, 1), got {batch_norm_decay}")
        for layer in model.layers:
            if isinstance(layer, layers.BatchNormalization):
                layer.momentum = float(batch_norm_decay)
    return model


def is_frame_model(model: keras.Model) -> bool:
    """True when the model returns per-frame logits [B, F, 14] (labels are per sample)."""
    return len(model.output.shape) == 3


class SampleFeatures(layers.Layer):
    """A layer's input as one feature vector per sample: [N, ..., D] -> [B, D], the mean over
    every axis but the channels, B read from the logits (N is B, or B·frames when the
    network merges frames into rows). For a per-frame network this is the mean over the
    sample's frames; for a convolutional feature map, the mean over its positions."""

    def call(self, features, logits):
        channels = features.shape[-1]
        batch = keras.ops.shape(logits)[0]
        return keras.ops.mean(keras.ops.reshape(features, (batch, -1, channels)), axis=1)


def with_features(model: keras.Model, name: str) -> keras.Model:
    """`model` with a second output: its penultimate features per sample, [B, D] (the input
    of the layer its registry entry names, `feature_layer`). Shares the model's variables."""
    network = registry.get(name)
    if network.feature_layer is None:
        raise NetworkError(
            f"network {name!r} names no feature_layer: feature distillation (stage2.alpha > 0) needs the "
            "layer whose input is its penultimate feature (models.<name>.feature_layer)"
        )
    try:
        layer = model.get_layer(network.feature_layer)
    except ValueError:
        raise NetworkError(f"network {name!r}: feature_layer {network.feature_layer!r} is not a layer of it") from None
    features = SampleFeatures(name="sample_features")(layer.input, model.output)
    return keras.Model(model.inputs, [model.output, features], name=f"{model.name}_with_features")
