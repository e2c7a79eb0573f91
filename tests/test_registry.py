"""The network registry: one declaration per network, and the user's networks from the config."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from avdistill.networks import registry

USER_NETWORKS = Path(__file__).parent / "user_networks"
STUDENT = {"builder": "user_students:logmel_cnn", "input": "waveform", "roles": ["student"]}


@pytest.fixture
def private_registry(monkeypatch):
    """The registry as the package makes it, restored after the test; the user's modules importable."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.syspath_prepend(str(USER_NETWORKS))
    yield registry
    for name in ("user_students", "user_teachers", "broken_module"):
        sys.modules.pop(name, None)


def test_the_paper_networks_and_their_roles():
    assert registry.names() == ["dualcamnet", "hearnet", "soundnet5", "resnet50", "temporal_resnet50"]
    assert registry.names("teacher") == ["dualcamnet", "resnet50", "temporal_resnet50"]
    assert registry.names("student") == ["hearnet", "soundnet5"]
    # The audio-visual model is built by the library only: no stage of the tables trains it.
    assert registry.get("av_model").roles == () and "av_model" not in registry.names()
    assert {n: registry.get(n).modality for n in registry.names()} == {
        "dualcamnet": "acoustic",
        "hearnet": "audio",
        "soundnet5": "audio",
        "resnet50": "video",
        "temporal_resnet50": "video",
    }
    assert registry.get("av_model").modality == "acoustic+video"


def test_the_cli_offers_the_registered_networks():
    from avdistill.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    model = next(a for a in commands["train"]._actions if a.dest == "model")
    teacher = next(a for a in commands["distill"]._actions if a.dest == "teacher")
    assert list(model.choices) == registry.names()
    assert list(teacher.choices) == registry.names("teacher")


def test_an_unknown_network_names_the_registered_ones():
    with pytest.raises(registry.RegistryError, match="unknown network 'hear_net'; registered: dualcamnet, hearnet"):
        registry.get("hear_net")


def test_a_declaration_in_the_config_registers_a_network(private_registry):
    [network] = registry.register_from_config({"hearnet": {"learning_rate": 1e-3}, "logmel_cnn": STUDENT})
    assert network == registry.get("logmel_cnn")
    assert (network.inputs, network.roles, network.modality) == (("waveform",), ("student",), "audio")
    assert registry.names("student") == ["hearnet", "soundnet5", "logmel_cnn"]
    # Registering the same declaration again (every job does) is harmless; another is not.
    registry.register_from_config({"logmel_cnn": STUDENT})
    with pytest.raises(registry.RegistryError, match="already registered"):
        registry.register_from_config({"logmel_cnn": {**STUDENT, "roles": ["teacher"]}})
    # The digest of the user's module file, read without importing it.
    assert len(network.source_digest()) == 16 and "user_students" not in sys.modules


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"builder": "user_students:logmel_cnn", "input": "waveform"}, "needs roles"),
        ({**STUDENT, "input": "mel"}, "input must be one of acoustic_images, waveform"),
        ({**STUDENT, "roles": ["judge"]}, "roles must be among teacher, student"),
        ({**STUDENT, "builder": "user_students.logmel_cnn"}, "builder must be 'package.module:function'"),
    ],
)
def test_a_bad_declaration_says_what_is_wrong(private_registry, settings, message):
    with pytest.raises(registry.RegistryError, match=f"models.logmel_cnn: .*{message}"):
        registry.register_from_config({"logmel_cnn": settings})


def test_a_paper_network_cannot_be_redeclared(private_registry):
    with pytest.raises(registry.RegistryError, match="cannot be set for the built-in network 'hearnet'"):
        registry.register_from_config({"hearnet": STUDENT})


def test_a_user_network_builds_through_the_registry(private_registry):
    from avdistill.networks.build import build_model

    registry.register_from_config({"logmel_cnn": STUDENT})
    model = build_model("logmel_cnn", 5)
    assert tuple(model.output.shape) == (None, 14)  # num_classes passed: the builder names it


def test_a_module_that_fails_to_import_is_named(private_registry):
    from avdistill.networks.build import NetworkError, build_model

    registry.register_from_config({"mine": {**STUDENT, "builder": "broken_module:net"}})
    with pytest.raises(NetworkError, match="network 'mine'.*module 'broken_module' failed to import .*not installed"):
        build_model("mine", 5)
    registry.register_from_config({"other": {**STUDENT, "builder": "user_students:no_such_function"}})
    with pytest.raises(NetworkError, match="module 'user_students' has no function 'no_such_function'"):
        build_model("other", 5)


def test_a_network_of_the_wrong_shape_is_refused_with_the_expected_shape(private_registry):
    from avdistill.networks.build import NetworkError, build_model

    registry.register_from_config({"wrong": {**STUDENT, "builder": "user_students:wrong_classes"}})
    with pytest.raises(
        NetworkError, match=r"network 'wrong' \(builder user_students:wrong_classes\): logits of shape "
    ):
        build_model("wrong", 5)
    # A network declared for spectrograms but built on the waveform: the input is named.
    registry.register_from_config({"misfit": {**STUDENT, "input": "spectrogram"}})
    with pytest.raises(NetworkError, match=r"the pipeline gives \['spectrogram'\] of shape \[\(None, 500, 1, 257\)\]"):
        build_model("misfit", 5)


@pytest.mark.parametrize(
    ("name", "sample_length", "features"),
    # The penultimate features, written out from the paper (§3): DualCamNet's full1 and
    # HearNet's and SoundNet5's last conv give 1024, the ResNet-50s' pooled block4 2048.
    [("dualcamnet", 1, 1024), ("hearnet", 5, 1024), ("soundnet5", 5, 1024), ("resnet50", 1, 2048)],
)
def test_each_paper_network_names_the_layer_of_its_penultimate_features(name, sample_length, features):
    import numpy as np

    from avdistill.networks.build import build_model, with_features

    model = build_model(name, sample_length, crop_size=32, trainable="all")
    both = with_features(model, name)
    shape = (2, *registry.input_shape(registry.get(name).inputs[0], sample_length, 32))
    x = np.random.default_rng(0).normal(size=shape).astype("float32")
    logits, values = both.predict_on_batch(x)
    assert values.shape == (2, features)
    # The features model shares the network's variables: the network's own logits.
    np.testing.assert_allclose(logits, model.predict_on_batch(x), rtol=1e-5, atol=1e-6)


def test_a_user_network_without_a_feature_layer_is_refused_for_feature_distillation(private_registry):
    from avdistill.networks.build import NetworkError, build_model, with_features

    registry.register_from_config({"plain": STUDENT, "named": {**STUDENT, "feature_layer": "no_such_layer"}})
    with pytest.raises(NetworkError, match="network 'plain' names no feature_layer"):
        with_features(build_model("plain", 5), "plain")
    with pytest.raises(NetworkError, match="network 'named': feature_layer 'no_such_layer' is not a layer of it"):
        with_features(build_model("named", 5), "named")
