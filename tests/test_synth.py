"""The synthetic dataset: its layout, determinism, and the physics it is meant to carry."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import scipy.io

from avdistill.data import synth
from avdistill.data.synth import SynthOptions, simulate_sequence

FS = 12288


def test_raw_layout_and_formats(tiny_raw):
    from tests.conftest import TINY

    frames = int(TINY["seconds"] * 12)
    sequences = sorted(p.parent for p in (tiny_raw / "matfiles").glob("Location_*/Subject_*/Action_*/MFCC_Image"))
    assert len(sequences) == len(TINY["locations"]) * TINY["subjects"] * len(TINY["actions"])
    # Raw action folders are 0-based, as the original's converter expects.
    assert sorted({p.name for p in sequences}) == [f"Action_{a:03d}" for a in TINY["actions"]]
    sequence = sequences[0].relative_to(tiny_raw / "matfiles")
    mats = sorted((tiny_raw / "matfiles" / sequence / "MFCC_Image").iterdir())
    assert len(mats) == frames and (tiny_raw / "matfiles" / sequence / "MFCC_Image" / f"Data_{frames}.mat").exists()
    image = scipy.io.loadmat(mats[0])["MFCC"]
    assert image.shape == (36, 48, 12)
    audio = np.load(tiny_raw / "sync" / sequence / "audio" / "A_000001.npy")
    assert audio.dtype == np.int32 and audio.shape == (1, 1024)
    video = cv2.imread(str(tiny_raw / "sync" / sequence / "video" / f"I_{frames:06d}.jpeg"))
    assert video.shape == (*TINY["frame_size"], 3)


def test_same_seed_same_data_other_seed_other_data():
    options = SynthOptions(seconds=2, frame_size=(32, 48), seed=1)
    first = simulate_sequence(2, 1, 6, options)
    second = simulate_sequence(2, 1, 6, options)
    other = simulate_sequence(2, 1, 6, SynthOptions(seconds=2, frame_size=(32, 48), seed=2))
    for a, b, c in zip(first, second, other, strict=True):
        assert np.array_equal(a, b)
        assert not np.array_equal(a, c)


def _spectrum(microphone):
    signal = microphone.astype(np.float64).ravel()
    power = np.abs(np.fft.rfft(signal)) ** 2
    return np.fft.rfftfreq(len(signal), 1 / FS), power


@pytest.fixture(scope="module")
def anechoic():
    options = SynthOptions(seconds=8, frame_size=(32, 48), seed=0)
    return {action: simulate_sequence(1, 1, action, options) for action in (0, 3, 6, 7, 12)}


def test_actions_have_their_own_spectral_and_temporal_signatures(anechoic):
    def centroid(action):
        freqs, power = _spectrum(anechoic[action][1])
        return np.sum(freqs * power) / np.sum(power)

    def flatness(action):
        _, power = _spectrum(anechoic[action][1])
        power = power[1:] + 1e-9
        return np.exp(np.mean(np.log(power))) / np.mean(power)

    def crest(action):
        signal = anechoic[action][1].astype(np.float64).ravel()
        return np.max(np.abs(signal)) / np.sqrt(np.mean(signal**2))

    # Knocking is low and resonant, whistling tonal around 1.5 kHz, paper noise broadband.
    assert centroid(7) < 1000 < centroid(3)
    assert flatness(12) > 20 * flatness(3)
    # Claps are impulsive; a whistle is a sustained tone.
    assert crest(0) > 3 * crest(3)


def test_acoustic_image_shows_where_the_sound_is(anechoic):
    def peak_row(action):
        energy = anechoic[action][0][..., 0].mean(axis=0)  # c0 ~ total log power per pixel
        return np.unravel_index(np.argmax(energy), energy.shape)[0]

    # Whistling comes from the mouth, typing from the keyboard on the table below it.
    assert peak_row(6) > peak_row(3) + 10


def test_separate_sources_are_separable_in_the_image_but_mixed_in_the_microphone():
    n = 24 * 1024
    t = np.arange(n) / FS
    left = 0.05 * np.sin(2 * np.pi * 4000 * t)
    right = 0.05 * np.sin(2 * np.pi * 2500 * t)
    frames = n // 1024
    mix = synth.Mix(
        directional=[(left, np.tile([0.2, 0.5], (frames, 1))), (right, np.tile([0.8, 0.5], (frames, 1)))],
        diffuse=1e-4 * np.random.default_rng(0).standard_normal(n),
        microphone=left + right,
    )
    energy = synth.acoustic_images(mix)[..., 0].mean(axis=0)
    row = energy[18]
    left_col, right_col, middle = int(0.2 * 48), int(0.8 * 48), 24
    assert row[left_col] > row[middle] + 1 and row[right_col] > row[middle] + 1
    # The single microphone holds both tones, with nothing to tell where they came from.
    freqs, power = _spectrum(mix.microphone)
    for tone in (2500, 4000):
        assert power[np.argmin(np.abs(freqs - tone))] > 1e3 * np.median(power)


def test_point_spread_narrows_with_frequency():
    widths = synth.psf_sigma_pixels(np.array([500.0, 1000.0, 4000.0]))
    assert widths[0] > widths[1] > widths[2]
    # lambda / D: twice the frequency, half the beam width (where not clipped).
    assert widths[1] == pytest.approx(4 * widths[2], rel=1e-6)


def test_office_and_terrace_add_their_interferers_to_the_image():
    options = SynthOptions(seconds=6, frame_size=(32, 48), seed=0)
    quiet = simulate_sequence(1, 1, 3, options)[0][..., 0].mean(axis=0)
    office = simulate_sequence(2, 1, 3, options)[0][..., 0].mean(axis=0)
    terrace = simulate_sequence(3, 1, 3, options)[0][..., 0].mean(axis=0)
    # The colleague and the passer-by are at the right edge; the birds in the tree at the top left.
    assert office[10:30, 40:].mean() > quiet[10:30, 40:].mean() + 1
    assert terrace[10:30, 40:].mean() > quiet[10:30, 40:].mean() + 1
    assert terrace[:10, :10].mean() > quiet[:10, :10].mean() + 1


@pytest.mark.parametrize("location", [2, 3])
def test_the_second_person_does_one_of_the_datasets_actions_as_loud_as_a_subject(location):
    """The office colleague and the terrace passer-by do one of the dataset's other actions at
    a subject's level, so the microphone alone cannot tell which sound is the subject's."""
    from avdistill.data.scenes import action_scene, mix, subject_traits

    subject = subject_traits(0, 1)
    scene = action_scene(0, subject, np.random.default_rng(0), 48)  # the subject claps
    # A subject's loudness spans 0.7-1.3 of its action's level, at 0.05 RMS for level 1;
    # hammering (raw 8) is 1.5, clicking (raw 5) 0.6: disjoint ranges, so each RMS below
    # also says which action the person does.
    for other_action, level in ((8, 1.5), (5, 0.6)):
        for draw in range(4):
            sound = mix(location, scene, subject, 0, 0, 1, np.random.default_rng(draw), (other_action,))
            target, (person, uv) = sound.directional[0][0], sound.directional[1]
            assert 0.05 * level * 0.7 <= np.sqrt(np.mean(person**2)) <= 0.05 * level * 1.3
            np.testing.assert_allclose(uv[:, 0], 0.88)  # at the right edge
            # ... and in the microphone, mixed with the subject (beside reverberation, wind and
            # birds; a sound the microphone did not hear would correlate about 0).
            assert np.corrcoef(sound.microphone - target, person)[0, 1] > 0.3


def test_video_shows_the_action():
    options = SynthOptions(seconds=2, frame_size=(48, 64), seed=0)
    clapping = simulate_sequence(1, 1, 0, options)[2].astype(float)
    typing = simulate_sequence(1, 1, 6, options)[2].astype(float)
    assert np.abs(clapping.mean(axis=0) - typing.mean(axis=0)).mean() > 2  # different scenes
    assert clapping.std(axis=0).mean() > 3  # the hands move


def test_options_are_validated():
    with pytest.raises(ValueError, match="subjects"):
        SynthOptions(subjects=10)
    with pytest.raises(ValueError, match="actions"):
        SynthOptions(actions=(14,))
