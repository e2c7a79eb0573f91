"""Pretrained weights: SoundNet's Torch7 file and slim's V1 ResNet-50 checkpoint, converted
and loaded, checked against forward passes written here from the original's definitions."""

from __future__ import annotations

import tarfile

import numpy as np
import pytest

from avdistill.errors import DataError
from avdistill.fetch.pretrained import convert_resnet, convert_soundnet, scan_t7
from avdistill.train.fit import build
from avdistill.train.options import TrainingError, TrainingOptions, job_options
from tests import torch7
from tests.conftest import pack_zip
from tests.slim_resnet import resnet_v1_50_logits, write_v1_checkpoint

SAMPLE_RATE = 22050


def _pipeline_options(sample_length: int, crop_size: int = 64):
    from avdistill.data.pipeline import PipelineOptions

    return PipelineOptions(sample_length=sample_length, video_crop_size=crop_size)


# --- SoundNet ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def soundnet_t7(soundnet_fixture):
    return soundnet_fixture


def _numpy_soundnet_conv4(waveform: np.ndarray, network: torch7.Module) -> np.ndarray:
    """conv1-conv4 of SoundNet5 in NumPy from the Torch modules (inference mode): [T, 256].

    Batch norm uses the original's epsilon, 1e-3 (slim's default, not Torch's 1e-5).
    """
    modules = network.fields["modules"]
    x = waveform[None, :].astype(np.float64)  # [channels, time]
    for index, (_, _, k_h, stride, pad) in enumerate(torch7.SOUNDNET5_CONVS):
        conv, norm = modules[4 * index].fields, modules[4 * index + 1].fields
        x = np.pad(x, ((0, 0), (pad, pad)))
        windows = np.lib.stride_tricks.sliding_window_view(x, k_h, axis=1)[:, ::stride]  # [in, T, k]
        x = np.einsum("itk,oik->ot", windows, conv["weight"][..., 0]) + conv["bias"][:, None]
        x = (x - norm["running_mean"][:, None]) / np.sqrt(norm["running_var"][:, None] + 1e-3)
        x = np.maximum(x * norm["weight"][:, None] + norm["bias"][:, None], 0)
        if index < 3:  # max pool 8, stride 8
            t = x.shape[1] // 8
            x = x[:, : 8 * t].reshape(x.shape[0], t, 8).max(axis=2)
    return x.T


def test_soundnet_zip_converts_and_loads_into_conv1_to_conv4(soundnet_t7, tmp_path):
    import keras

    folder, network = soundnet_t7
    out = tmp_path / "soundnet5.npz"
    convert_soundnet(folder / "soundnet_models_public.zip", out)
    options = TrainingOptions(model="soundnet5", init=str(out), init_from="soundnet")
    model = build(options, _pipeline_options(5))

    # Exactly conv1-conv4 and their batch norms came from the file: 4 x (kernel, bias, 4 BN).
    stored = np.load(out)
    assert sorted(stored.files) == sorted(
        f"SoundNet.conv{i}{suffix}"
        for i in range(1, 5)
        for suffix in ("/kernel", "/bias", ".norm/gamma", ".norm/beta", ".norm/moving_mean", ".norm/moving_variance")
    )
    conv1 = network.fields["modules"][0].fields["weight"]  # Torch [out, in, kH, kW]
    np.testing.assert_array_equal(model.get_layer("SoundNet.conv1").kernel.numpy()[:, 0, 0, :], conv1[:, 0, :, 0].T)
    fresh = TrainingOptions(model="soundnet5")
    from avdistill.train.session import configure_tensorflow

    configure_tensorflow(0)
    scratch = build(fresh, _pipeline_options(5))
    assert not np.array_equal(
        scratch.get_layer("SoundNet.conv1").kernel.numpy(), model.get_layer("SoundNet.conv1").kernel.numpy()
    )

    # Numerically: the Keras conv4 block equals the NumPy forward pass from the Torch arrays.
    waveform = np.random.default_rng(2).normal(0, 0.3, 5 * SAMPLE_RATE).astype(np.float32)
    conv4 = keras.Model(model.input, model.get_layer("SoundNet.conv4.relu").output)
    ours = conv4(waveform[None], training=False).numpy()[0, :, 0, :]
    reference = _numpy_soundnet_conv4(waveform, network)
    assert ours.shape == reference.shape == (14, 256)
    # Float32 sums in another order: 1e-4 of the outputs' magnitude (CPU kernels differ).
    np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(reference).max()))
    assert np.abs(reference).max() > 0.1  # a real signal, not all zeros after the ReLUs


def test_soundnet_object_and_scene_heads_are_converted(tmp_path):
    network = torch7.soundnet5_network(np.random.default_rng(3), heads=(1000, 401))
    torch7.save(tmp_path / "soundnet5_final.t7", network)
    convert_soundnet(tmp_path / "soundnet5_final.t7", tmp_path / "out.npz")
    stored = np.load(tmp_path / "out.npz")
    branches = network.fields["modules"][15].fields["modules"]
    for name, branch in zip(("conv5a", "conv5b"), branches, strict=True):
        np.testing.assert_array_equal(stored[f"SoundNet.{name}/kernel"], branch.fields["weight"].transpose(2, 3, 1, 0))
        np.testing.assert_array_equal(stored[f"SoundNet.{name}/bias"], branch.fields["bias"])
    assert stored["SoundNet.conv5a/kernel"].shape == (16, 1, 256, 1000)
    assert stored["SoundNet.conv5b/kernel"].shape == (16, 1, 256, 401)


def _write(path, value) -> None:
    torch7.save(path, value)


def _soundnet_with(rng, index: int, module) -> torch7.Module:
    network = torch7.soundnet5_network(rng)
    network.fields["modules"][index] = module
    return network


@pytest.mark.parametrize(
    ("build_network", "message"),
    [
        (lambda rng: {"modules": []}, "does not hold an nn.Sequential"),
        (lambda rng: torch7.Module("nn.Sequential", {"modules": [torch7.Module("nn.ReLU")] * 3}), "3 modules"),
        (lambda rng: _soundnet_with(rng, 1, torch7.Module("nn.ReLU")), "module 1 is nn.ReLU"),
        (
            lambda rng: _soundnet_with(rng, 4, torch7.conv(rng, 32, 64, 16, 2, 8)),
            "module 4 (nn.SpatialConvolution) has weight (64, 32, 16, 1), expected (64, 32, 32, 1)",
        ),
        (
            lambda rng: _soundnet_with(
                rng,
                0,
                torch7.Module(
                    "nn.SpatialConvolution", {"weight": np.full((32, 1, 64, 1), np.nan), "bias": np.zeros(32)}
                ),
            ),
            "non-finite",
        ),
        (
            lambda rng: _soundnet_with(
                rng, 0, torch7.Module("nn.SpatialConvolution", {"weight": torch7.Tensor(np.zeros(8), sizes=(10**9,))})
            ),
            "reaches element 999,999,999 of a 8-element storage",
        ),
        (
            lambda rng: _soundnet_with(
                rng, 0, torch7.Module("nn.SpatialConvolution", {"weight": torch7.Tensor(np.zeros(8), count=2**40)})
            ),
            "runs past the end",
        ),
    ],
)
def test_bad_t7_files_give_one_clear_error(tmp_path, build_network, message):
    path = tmp_path / "soundnet5_final.t7"
    _write(path, build_network(np.random.default_rng(0)))
    with pytest.raises(DataError, match="soundnet5_final.t7") as error:
        convert_soundnet(path, tmp_path / "out.npz")
    assert message in str(error.value)
    assert not (tmp_path / "out.npz").exists()


def test_truncated_t7_files_are_refused_at_every_cut(soundnet_t7, tmp_path):
    folder, _ = soundnet_t7
    data = (folder / "soundnet5_final.t7").read_bytes()
    for cut in (3, 4, 40, 200, len(data) // 3, len(data) - 1):
        path = tmp_path / "cut.t7"
        path.write_bytes(data[:cut])
        with pytest.raises(DataError, match="cut.t7: is not a usable Torch7 file"):
            scan_t7(path)


def test_hostile_t7_structures_are_refused(tmp_path):
    import struct

    def raw(name, payload: bytes):
        path = tmp_path / name
        path.write_bytes(payload)
        return path

    function = raw("function.t7", struct.pack("<iii", 6, 1, 5) + b"\x1bLuaQ")
    nested = raw(
        "nested.t7", b"".join(struct.pack("<iii", 3, i + 1, 1) + struct.pack("<id", 1, 1.0) for i in range(200))
    )
    huge_table = raw("table.t7", struct.pack("<iii", 3, 1, 2**30))
    huge_string = raw("string.t7", struct.pack("<ii", 2, 2**31 - 1))
    for path, message in [
        (function, "Lua function"),
        (nested, "nested deeper"),
        (huge_table, "table of absurd size"),
        (huge_string, "runs past the end"),
    ]:
        with pytest.raises(DataError, match=message):
            scan_t7(path)


def test_zip_without_the_t7_member_is_refused(tmp_path):
    pack_zip(tmp_path / "soundnet_models_public.zip", {"soundnet_models_public/soundnet8_final.t7": b"x"})
    with pytest.raises(DataError, match="holds no file named soundnet5_final.t7"):
        convert_soundnet(tmp_path / "soundnet_models_public.zip", tmp_path / "out.npz")


# --- ResNet-50 --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def resnet_checkpoint(resnet_fixture):
    """The fixture tarball converted as the workflow does."""
    folder, arrays = resnet_fixture
    convert_resnet(folder / "resnet_v1_50_2016_08_28.tar.gz", folder / "resnet_v1_50.weights.npz")
    return folder, arrays


def test_resnet_checkpoint_is_a_v1_file(resnet_checkpoint):
    folder, _ = resnet_checkpoint
    assert not (folder / "resnet_v1_50.ckpt.index").exists()  # a V2 checkpoint would have one


def test_converted_resnet_gives_slim_logits(resnet_checkpoint):
    folder, arrays = resnet_checkpoint
    options = TrainingOptions(model="resnet50", init=str(folder / "resnet_v1_50.weights.npz"), init_from="imagenet")
    model = build(options, _pipeline_options(1, crop_size=64))
    frames = np.random.default_rng(5).normal(0, 1, (1, 12, 64, 64, 3)).astype(np.float32)
    ours = model(frames, training=False).numpy()[0]
    logits = model.get_layer("resnet_v1_50.logits")  # fresh: ImageNet's 1000-way logits are not used
    reference = resnet_v1_50_logits(frames[0], arrays, logits.kernel.numpy(), logits.bias.numpy())
    # Float32 sums in another order: 1e-4 of the outputs' magnitude (CPU kernels differ).
    np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-4 * max(1.0, np.abs(reference).max()))
    # The comparison is sensitive: the same network from scratch is far from the reference.
    scratch = build(TrainingOptions(model="resnet50"), _pipeline_options(1, crop_size=64))
    scratch.get_layer("resnet_v1_50.logits").set_weights(logits.get_weights())
    assert np.abs(scratch(frames, training=False).numpy()[0] - reference).max() > 1e-2


def test_imagenet_init_of_temporal_and_audio_visual_models(resnet_checkpoint):
    folder, arrays = resnet_checkpoint
    weights = str(folder / "resnet_v1_50.weights.npz")
    temporal = build(
        TrainingOptions(model="temporal_resnet50", init=weights, init_from="imagenet"), _pipeline_options(1)
    )
    kernel = temporal.get_layer("resnet_v1_50.block3.unit_4.bottleneck_v1.conv2").kernel.numpy()
    np.testing.assert_array_equal(kernel, arrays["resnet_v1_50/block3/unit_4/bottleneck_v1/conv2/weights"])
    conv_temp = [v for v in temporal.weights if "conv_temp/" in v.path]
    assert len(conv_temp) == 4  # one per block, still the identity in time: [3,1,1] = (0, 1, 0)
    for variable in conv_temp:
        expected = np.zeros(variable.shape, np.float32)
        expected[1, 0, 0] = np.eye(variable.shape[-1])
        np.testing.assert_array_equal(variable.numpy(), expected)

    av = build(TrainingOptions(model="av_model", init=weights, init_from="imagenet"), _pipeline_options(1))
    gamma = av.get_layer("resnet_v1_50.block4.unit_3.bottleneck_v1.conv3.BatchNorm").gamma.numpy()
    np.testing.assert_array_equal(gamma, arrays["resnet_v1_50/block4/unit_3/bottleneck_v1/conv3/BatchNorm/gamma"])
    assert av.get_layer("resnet_v1_50.logits").kernel.shape[-1] == 1024  # fresh, not ImageNet's 1000


def test_pretrained_weights_only_fit_their_models(tmp_path):
    settings = {"learning_rate": 1e-4, "epochs": 1, "batch_size": 2, "sample_length": 5, "number_of_crops": 1}
    with pytest.raises(
        TrainingError, match="init 'imagenet' is for resnet50, temporal_resnet50, av_model, not hearnet"
    ):
        job_options("hearnet", {**settings, "init": "imagenet"}, {}, 0, init_file=tmp_path / "x.npz")
    with pytest.raises(TrainingError, match="init 'soundnet' is for soundnet5, not resnet50"):
        job_options(
            "resnet50", {**settings, "sample_length": 1, "init": "soundnet"}, {}, 0, init_file=tmp_path / "x.npz"
        )


def test_checkpoint_that_is_not_resnet_v1_50_is_refused(resnet_checkpoint, tmp_path):
    _, arrays = resnet_checkpoint
    missing = dict(arrays)
    del missing["resnet_v1_50/block2/unit_3/bottleneck_v1/conv2/BatchNorm/moving_variance"]
    write_v1_checkpoint(tmp_path / "missing.ckpt", missing)
    with pytest.raises(
        DataError,
        match="missing.ckpt: is not a slim resnet_v1_50 checkpoint: no resnet_v1_50/block2/unit_3/bottleneck_v1/conv2/BatchNorm/moving_variance",
    ):
        convert_resnet(tmp_path / "missing.ckpt", tmp_path / "out.npz")

    reshaped = dict(arrays)
    reshaped["resnet_v1_50/conv1/weights"] = np.zeros((3, 3, 3, 64), np.float32)
    write_v1_checkpoint(tmp_path / "reshaped.ckpt", reshaped)
    with pytest.raises(
        DataError, match=r"resnet_v1_50/conv1/weights is float32\[3, 3, 3, 64\], expected float32\[7, 7, 3, 64\]"
    ):
        convert_resnet(tmp_path / "reshaped.ckpt", tmp_path / "out.npz")

    (tmp_path / "garbage.ckpt").write_bytes(b"not a checkpoint" * 100)
    with pytest.raises(DataError, match="garbage.ckpt: is not a TensorFlow checkpoint"):
        convert_resnet(tmp_path / "garbage.ckpt", tmp_path / "out.npz")
    assert not (tmp_path / "out.npz").exists()


def test_tarball_whose_checkpoint_is_a_link_is_refused(tmp_path):
    with tarfile.open(tmp_path / "resnet.tar.gz", "w:gz") as archive:
        info = tarfile.TarInfo("resnet_v1_50.ckpt")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        archive.addfile(info)
    with pytest.raises(DataError, match="resnet.tar.gz: member 'resnet_v1_50.ckpt' is not a regular file"):
        convert_resnet(tmp_path / "resnet.tar.gz", tmp_path / "out.npz")
