"""A synthetic stand-in for the DualCam actions dataset, written in the original raw layout.

The real dataset (14 actions x 9 subjects x 3 locations) is given by its authors on request.
This module simulates the sensor instead, so that the whole workflow runs from nothing:

* Each action is a sound source with its own temporal and spectral signature (impulsive
  claps and knocks, a whistled melody, voiced speech-like harmonics, fast typing clicks,
  broadband paper noise...) placed where the hands or the object are in the image.
  A subject changes tempo, pitch, loudness and position.
* Each location has its own acoustics: the anechoic chamber is clean; the open-space office
  adds reverberation, diffuse ventilation noise and a colleague (speaking, typing or
  clicking) at another desk; the outdoor terrace adds gusty low-frequency wind and distant
  birds in a tree.
* The microphone track (microphone 0, 12,288 Hz, int32) hears everything mixed.
* The acoustic image is what a beamforming planar array shows: per pixel of the 36 x 48 grid,
  the mel-band power arriving from that direction, each source spread by a point-spread
  function whose width follows the beam width lambda/D of a 0.5 m aperture (blurry at low
  frequency, sharp at high frequency), diffuse noise reduced by the array gain; then
  log and DCT to 12 MFCC-like coefficients. Spatially separate interferers are separable in
  the image but mixed in the single-microphone track: the acoustic-image teacher's edge.
* The video shows the scene: the subject, where the hands or object are and how they move,
  the location's background and its interferer.

What it does not model: real room impulse responses, microphone self-noise spectra,
occlusion, the real array geometry and its side lobes (a flat -20 dB floor stands in),
lighting changes beyond a global gain, and the natural variety of real people doing things.
Everything is deterministic for a seed: each sequence draws from its own generator seeded by
(seed, location, subject, action), so results do not depend on the number of jobs.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from avdistill.constants import (
    ACOUSTIC_IMAGE_SHAPE,
    ACTION_NAMES,
    FRAMES_PER_SECOND,
    MIC_SAMPLE_RATE,
    NUM_ACTIONS,
    SAMPLES_PER_FRAME,
)
from avdistill.fileio import atomic_directory
from avdistill.parallel import process_pool

log = logging.getLogger(__name__)

FS = MIC_SAMPLE_RATE
ROWS, COLS, COEFFS = ACOUSTIC_IMAGE_SHAPE
NUM_BANDS = 24  # mel bands before the DCT
SPEED_OF_SOUND = 343.0
APERTURE_M = 0.5  # DualCam array side
FIELD_OF_VIEW_RAD = np.deg2rad(60.0)  # horizontal, over 48 columns
SIDELOBE_LEVEL = 0.01  # -20 dB floor of the point-spread function
MFCC_STEP = 1.0 / 64  # coefficients are stored on a 1/64 grid: keeps .mat and GZIP records small


@dataclass(frozen=True)
class SynthOptions:
    locations: tuple = (1, 2, 3)
    subjects: int = 2
    actions: tuple = tuple(range(NUM_ACTIONS))  # raw, 0-based
    seconds: float = 30.0
    frame_size: tuple = (96, 128)  # video height, width (the real camera: 480 x 640)
    seed: int = 0

    def __post_init__(self):
        if not self.locations or not set(self.locations) <= {1, 2, 3}:
            raise ValueError(f"locations must be among 1, 2, 3, got {self.locations}")
        if not 1 <= self.subjects <= 9:
            raise ValueError(f"subjects must be 1..9, got {self.subjects}")
        if not self.actions or not set(self.actions) <= set(range(NUM_ACTIONS)):
            raise ValueError(f"actions must be among 0..13, got {self.actions}")
        if self.seconds * FRAMES_PER_SECOND < 1:
            raise ValueError(f"seconds must be positive, got {self.seconds}")
        if len(self.frame_size) != 2 or min(self.frame_size) < 16:
            raise ValueError(f"frame_size must be (height, width), each >= 16, got {self.frame_size}")

    @property
    def num_frames(self) -> int:
        return int(round(self.seconds * FRAMES_PER_SECOND))


@dataclass
class Subject:
    tempo: float  # events per second multiplier
    pitch: float  # frequency multiplier
    loudness: float
    x: float  # horizontal centre of the body, 0..1 of the image width
    y: float  # vertical offset
    shirt: tuple  # BGR
    skin: tuple


def subject_traits(seed: int, subject: int) -> Subject:
    rng = np.random.default_rng([seed, 7919, subject])
    return Subject(
        tempo=float(rng.uniform(0.8, 1.25)),
        pitch=float(rng.uniform(0.85, 1.2)),
        loudness=float(rng.uniform(0.7, 1.3)),
        x=float(0.5 + rng.uniform(-0.12, 0.12)),
        y=float(rng.uniform(-0.04, 0.04)),
        shirt=tuple(int(c) for c in rng.integers(40, 220, 3)),
        skin=tuple(int(c) for c in (rng.uniform(0.55, 1.0) * np.array([140, 170, 215]))),
    )


# --------------------------------------------------------------------------- signals


def _bandpass_noise(rng, n, low, high):
    """White noise limited to [low, high] Hz (FFT mask: exact band, no filter ringing)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / FS)
    spectrum[(freqs < low) | (freqs > min(high, FS / 2 - 1))] = 0
    out = np.fft.irfft(spectrum, n)
    return out / (np.std(out) + 1e-12)


def _decay(n, tau_s):
    return np.exp(-np.arange(n) / (tau_s * FS))


def _modes(freqs, taus, n, rng):
    """Damped resonances: struck wood or metal."""
    t = np.arange(n) / FS
    out = np.zeros(n)
    for f, tau in zip(freqs, taus, strict=True):
        if f < FS / 2:
            out += rng.uniform(0.5, 1.0) * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)) * np.exp(-t / tau)
    return out


def _place(signal, kernel, onset_s, gain=1.0):
    start = int(onset_s * FS)
    if start >= len(signal) or start < 0:
        return
    stop = min(len(signal), start + len(kernel))
    signal[start:stop] += gain * kernel[: stop - start]


def _onsets(rng, duration, rate, jitter=0.15, start=None):
    """Event times at about `rate` per second, each interval jittered."""
    times, t = [], rng.uniform(0.05, 1.0 / rate) if start is None else start
    while t < duration:
        times.append(t)
        t += rng.uniform(1 - jitter, 1 + jitter) / rate
    return np.array(times)


def _envelope_from_onsets(onsets, num_frames, width_s):
    """Per-frame 0..1 activity: 1 at an event, fading over `width_s`."""
    frame_t = (np.arange(num_frames) + 0.5) / FRAMES_PER_SECOND
    env = np.zeros(num_frames)
    for onset in onsets:
        env = np.maximum(env, np.clip(1 - np.abs(frame_t - onset) / width_s, 0, 1))
    return env


@dataclass
class Scene:
    """One sequence's sound sources and what the camera sees."""

    target: np.ndarray  # dry signal of the action
    target_uv: np.ndarray  # [F, 2] where it sounds from (u = x / width, v = y / height)
    hands: np.ndarray  # [F, 2, 2] left and right hand (u, v)
    prop: str | None = None
    prop_uv: np.ndarray | None = None  # [F, 2]
    prop_state: np.ndarray | None = None  # [F] action-specific 0..1 state
    mouth: np.ndarray | None = None  # [F] mouth opening 0..1
    table: bool = False


def _rest_hands(subject: Subject, num_frames):
    hands = np.zeros((num_frames, 2, 2))
    hands[:, 0] = (subject.x - 0.08, 0.62 + subject.y)
    hands[:, 1] = (subject.x + 0.08, 0.62 + subject.y)
    return hands


def _action_scene(action: int, subject: Subject, rng, num_frames: int) -> Scene:
    n = num_frames * SAMPLES_PER_FRAME
    duration = n / FS
    signal = np.zeros(n)
    frame_t = (np.arange(num_frames) + 0.5) / FRAMES_PER_SECOND
    cx, dy, tempo, pitch = subject.x, subject.y, subject.tempo, subject.pitch
    hands = _rest_hands(subject, num_frames)
    scene_kw: dict = {}

    if action == 0:  # clapping: broadband bursts, hands meeting at the chest
        onsets = _onsets(rng, duration, 2.2 * tempo, 0.1)
        for t in onsets:
            kernel = _bandpass_noise(rng, 400, 300, 5000) * _decay(400, 0.008)
            _place(signal, kernel, t, rng.uniform(0.7, 1.0))
        closeness = _envelope_from_onsets(onsets, num_frames, 0.2)
        gap = 0.02 + 0.09 * (1 - closeness)
        hands[:, 0] = np.c_[cx - gap, np.full(num_frames, 0.45 + dy)]
        hands[:, 1] = np.c_[cx + gap, np.full(num_frames, 0.45 + dy)]
        uv = hands.mean(axis=1)
    elif action == 1:  # snapping fingers: sharp high click with a short ring, hand raised
        for t in _onsets(rng, duration, 1.6 * tempo, 0.15):
            click = _bandpass_noise(rng, 200, 1500, 5500) * _decay(200, 0.003)
            ring = _modes([2200 * pitch], [0.005], 200, rng)
            _place(signal, click + 0.8 * ring, t, rng.uniform(0.7, 1.0))
        hands[:, 1] = (cx + 0.16, 0.33 + dy)
        hands[:, 1, 1] += 0.01 * np.sin(2 * np.pi * 1.6 * tempo * frame_t)
        uv = hands[:, 1].copy()
    elif action == 2:  # speaking: voiced harmonics, moving formants, syllable rhythm
        t = np.arange(n) / FS
        walk = np.cumsum(rng.standard_normal(n // 512 + 1)) * 0.02
        f0 = 140 * pitch * np.exp(np.interp(t, np.arange(len(walk)) * 512 / FS, walk - walk.mean()))
        phase = 2 * np.pi * np.cumsum(f0) / FS
        vowels = np.array([[730, 1090, 2440], [270, 2290, 3010], [300, 870, 2240], [530, 1840, 2480]]) * pitch**0.3
        choice = vowels[rng.integers(0, 4, int(duration * 4) + 2)]
        formants = np.stack([np.interp(t, np.arange(len(choice)) / 4, choice[:, k]) for k in range(3)])
        voiced = np.zeros(n)
        coarse_f0, coarse_formants = f0[::32], formants[:, ::32]  # they change slowly
        for h in range(1, 40):
            fh = h * coarse_f0
            gain = sum(np.exp(-((fh - coarse_formants[k]) ** 2) / (2 * (80 + 40 * k) ** 2)) for k in range(3))
            gain = np.where(fh < FS / 2, gain, 0) / h**0.5
            voiced += np.repeat(gain, 32)[:n] * np.sin(h * phase)
        syllables = 0.5 * (1 - np.cos(2 * np.pi * 4 * tempo * t)).clip(0)
        pauses = np.repeat(rng.uniform(size=int(duration / 1.5) + 2) > 0.25, int(1.5 * FS))[:n]
        signal = voiced * syllables * pauses
        scene_kw["mouth"] = np.interp(frame_t, t[::64], (syllables * pauses)[::64])
        uv = np.tile([cx, 0.25 + dy], (num_frames, 1))
    elif action == 3:  # whistling: a tonal melody with vibrato, in phrases
        t = np.arange(n) / FS
        notes = 1400 * pitch * 2 ** (rng.choice([0, 2, 4, 5, 7, 9, 12], int(duration * 3) + 2) / 12)
        note_t = np.cumsum(rng.uniform(0.25, 0.55, len(notes)))
        freq = notes[np.searchsorted(note_t, t).clip(0, len(notes) - 1)]
        freq = freq * (1 + 0.015 * np.sin(2 * np.pi * 5.5 * t))
        phrases = np.repeat(rng.uniform(size=int(duration / 2) + 2) > 0.2, 2 * FS)[:n]
        signal = (
            np.sin(2 * np.pi * np.cumsum(freq) / FS) * phrases + 0.05 * _bandpass_noise(rng, n, 1000, 4000) * phrases
        )
        scene_kw["mouth"] = 0.4 * np.interp(frame_t, t[::64], phrases[::64].astype(float))
        uv = np.tile([cx, 0.25 + dy], (num_frames, 1))
    elif action == 4:  # kendama: wooden knocks as the ball lands in the cup
        onsets = _onsets(rng, duration, 0.8 * tempo, 0.2)
        for t in onsets:
            _place(
                signal,
                _modes(np.array([900, 1850, 2750]) * pitch, [0.03, 0.02, 0.012], 800, rng),
                t,
                rng.uniform(0.6, 1.0),
            )
        hands[:, 1] = (cx + 0.1, 0.52 + dy)
        last = np.searchsorted(onsets, frame_t, side="right") - 1
        since = np.where(last >= 0, frame_t - onsets[last.clip(0)], 1.0)
        height = 0.2 * np.sin(np.pi * np.clip(since * 0.8 * tempo, 0, 1))
        scene_kw.update(
            prop="kendama", prop_uv=np.c_[np.full(num_frames, cx + 0.1), 0.47 + dy - height], prop_state=height
        )
        uv = hands[:, 1].copy()
    elif action == 5:  # clicking a pen: double clicks, very short and high
        for t in _onsets(rng, duration, 1.2 * tempo, 0.2):
            for k in range(2):
                click = _bandpass_noise(rng, 80, 2000, 6000) * _decay(80, 0.001) + _modes(
                    [4100 * pitch], [0.004], 80, rng
                )
                _place(signal, click, t + 0.06 * k, rng.uniform(0.6, 1.0))
        hands[:, 1] = (cx + 0.1, 0.66 + dy)
        scene_kw.update(prop="pen", prop_uv=hands[:, 1].copy(), table=True)
        uv = hands[:, 1].copy()
    elif action == 6:  # typing: fast irregular key clicks in words, on a keyboard
        onsets = _onsets(rng, duration, 7.0 * tempo, 0.5)
        words = np.repeat(rng.uniform(size=int(duration) + 2) > 0.2, 1)[onsets.astype(int)]
        key_x = np.zeros(num_frames)
        for t, keep in zip(onsets, words, strict=True):
            if keep:
                low = 400 if rng.uniform() < 0.15 else 800  # the space bar sounds lower
                _place(signal, _bandpass_noise(rng, 120, low, 5000) * _decay(120, 0.006), t, rng.uniform(0.3, 1.0))
                key_x[min(int(t * FRAMES_PER_SECOND), num_frames - 1)] = rng.uniform(-0.1, 0.1)
        hands[:, 0] = (cx - 0.07, 0.7 + dy)
        hands[:, 1] = (cx + 0.07, 0.7 + dy)
        hands[:, :, 1] += 0.008 * rng.standard_normal((num_frames, 2))
        scene_kw.update(prop="keyboard", prop_uv=np.tile([cx, 0.73 + dy], (num_frames, 1)), table=True)
        uv = np.c_[cx + key_x, np.full(num_frames, 0.72 + dy)]
    elif action == 7:  # knocking on a door: groups of three low knocks
        onsets = _onsets(rng, duration, 0.5 * tempo, 0.2)
        for t in onsets:
            for k in range(3):
                knock = _modes(np.array([180, 420, 950]) * pitch, [0.04, 0.025, 0.01], 800, rng)
                _place(
                    signal,
                    knock + 0.2 * _bandpass_noise(rng, 800, 500, 3000) * _decay(800, 0.003),
                    t + 0.18 * k / tempo,
                    1.0,
                )
        swing = _envelope_from_onsets(onsets + 0.18 / tempo, num_frames, 0.4)
        hands[:, 0] = np.c_[cx - 0.2 + 0.03 * (1 - swing), np.full(num_frames, 0.45 + dy)]
        scene_kw.update(prop="door", prop_uv=np.tile([cx - 0.25, 0.55], (num_frames, 1)))
        uv = np.c_[np.full(num_frames, cx - 0.22), np.full(num_frames, 0.45 + dy)]
    elif action == 8:  # hammering: a strike with metallic ringing
        onsets = _onsets(rng, duration, 1.3 * tempo, 0.12)
        for t in onsets:
            ring = _modes(np.array([1100, 2900, 4300]) * pitch, [0.12, 0.08, 0.05], 3000, rng)
            _place(signal, ring + _bandpass_noise(rng, 3000, 200, 5000) * _decay(3000, 0.004), t, rng.uniform(0.8, 1.0))
        lift = 1 - _envelope_from_onsets(onsets, num_frames, 0.35)
        hands[:, 1] = np.c_[np.full(num_frames, cx + 0.15), 0.64 + dy - 0.15 * lift]
        scene_kw.update(prop="hammer", prop_uv=hands[:, 1].copy(), prop_state=lift, table=True)
        uv = np.tile([cx + 0.15, 0.68 + dy], (num_frames, 1))
    elif action == 9:  # breaking peanuts: a cluster of tiny cracks
        for t in _onsets(rng, duration, 0.7 * tempo, 0.3):
            for _ in range(rng.integers(5, 15)):
                _place(
                    signal,
                    _bandpass_noise(rng, 60, 1000, 5000) * _decay(60, 0.0015),
                    t + rng.uniform(0, 0.08),
                    rng.uniform(0.3, 1.0),
                )
        hands[:, 0] = (cx - 0.025, 0.55 + dy)
        hands[:, 1] = (cx + 0.025, 0.55 + dy)
        scene_kw.update(prop="peanut", prop_uv=hands.mean(axis=1))
        uv = hands.mean(axis=1)
    elif action == 10:  # ripping paper: long rough broadband tears, hands pulling apart
        state = np.zeros(num_frames)
        for t in _onsets(rng, duration, 0.5 * tempo, 0.2):
            length = int(rng.uniform(0.6, 1.0) * FS)
            crackle = np.repeat(rng.uniform(0.2, 1.0, length // 200 + 1), 200)[:length]
            _place(signal, _bandpass_noise(rng, length, 1000, 6000) * crackle * np.linspace(0.5, 1, length), t)
            active = (frame_t >= t) & (frame_t < t + length / FS)
            state[active] = (frame_t[active] - t) / (length / FS)
        gap = 0.03 + 0.08 * state
        hands[:, 0] = np.c_[cx - gap, np.full(num_frames, 0.45 + dy)]
        hands[:, 1] = np.c_[cx + gap, np.full(num_frames, 0.45 + dy)]
        scene_kw.update(prop="paper_rip", prop_uv=hands.mean(axis=1), prop_state=state)
        uv = hands.mean(axis=1)
    elif action == 11:  # crumpling plastic: a dense crackle
        t_click = np.cumsum(rng.exponential(1 / (40 * tempo), int(duration * 60 * tempo) + 10))
        slow = 0.5 + 0.5 * np.sin(2 * np.pi * 0.3 * np.arange(n) / FS + rng.uniform(0, 6))
        for t in t_click[t_click < duration]:
            _place(signal, _bandpass_noise(rng, 50, 2000, 6000) * _decay(50, 0.001), t, rng.uniform(0.2, 1.0))
        signal *= slow
        hands[:, 0] = (cx - 0.03, 0.55 + dy)
        hands[:, 1] = (cx + 0.03, 0.55 + dy)
        squeeze = np.interp(frame_t, np.arange(n)[::256] / FS, slow[::256])
        hands[:, 0, 0] -= 0.015 * squeeze
        hands[:, 1, 0] += 0.015 * squeeze
        scene_kw.update(prop="plastic", prop_uv=hands.mean(axis=1), prop_state=squeeze)
        uv = hands.mean(axis=1)
    elif action == 12:  # shaking paper: a rustle modulated by the shaking
        t = np.arange(n) / FS
        shake = np.abs(np.sin(2 * np.pi * 3 * tempo * t))
        bursts = np.repeat(rng.uniform(size=int(duration / 2.5) + 2) > 0.2, int(2.5 * FS))[:n]
        signal = _bandpass_noise(rng, n, 500, 5000) * shake * bursts
        wave = (
            0.05 * np.sin(2 * np.pi * 3 * tempo * frame_t) * np.interp(frame_t, t[::256], bursts[::256].astype(float))
        )
        hands[:, 1] = np.c_[np.full(num_frames, cx + 0.07), 0.4 + dy + wave]
        scene_kw.update(prop="paper", prop_uv=hands[:, 1].copy())
        uv = hands[:, 1].copy()
    else:  # 13, dropping a stick: a wooden impact and bounces on the floor
        onsets = _onsets(rng, duration, 0.33 * tempo, 0.15, start=0.4)
        state = np.zeros(num_frames)  # 0 held, 0..1 falling, 1 on the floor
        for t in onsets:
            for k, (delay, gain) in enumerate([(0.0, 1.0), (0.12, 0.45), (0.2, 0.2)]):
                impact = _modes(np.array([600, 1500, 2600]) * pitch, [0.025, 0.015, 0.01], 600, rng)
                _place(
                    signal,
                    impact + 0.3 * _bandpass_noise(rng, 600, 300, 4000) * _decay(600, 0.004),
                    t + delay + 0.02 * k,
                    gain,
                )
            fall = (frame_t >= t - 0.35) & (frame_t < t)
            state[fall] = 1 - (t - frame_t[fall]) / 0.35
            state[(frame_t >= t) & (frame_t < t + 1.5)] = 1
        hands[:, 1] = (cx + 0.12, 0.45 + dy)
        scene_kw.update(
            prop="stick", prop_uv=np.c_[np.full(num_frames, cx + 0.12), 0.45 + dy + 0.47 * state], prop_state=state
        )
        uv = np.tile([cx + 0.12, 0.92], (num_frames, 1))
    return Scene(target=signal, target_uv=np.asarray(uv, float), hands=hands, **scene_kw)


def _room_impulse_response(rng, rt60_s=0.5, length_s=0.6):
    n = int(length_s * FS)
    tail = rng.standard_normal(n) * np.exp(-6.91 * np.arange(n) / (rt60_s * FS))
    tail[: int(0.005 * FS)] = 0  # the first reflections arrive after ~5 ms
    return tail / np.sqrt(np.sum(tail**2))


def _birds(rng, n):
    """Distant birdsong: groups of fast upward chirps."""
    out = np.zeros(n)
    for t in _onsets(rng, n / FS, 0.6, 0.6):
        for k in range(rng.integers(2, 6)):
            length = int(rng.uniform(0.05, 0.15) * FS)
            f = np.linspace(rng.uniform(2500, 3500), rng.uniform(3800, 5200), length)
            chirp = np.sin(2 * np.pi * np.cumsum(f) / FS) * np.hanning(length)
            _place(out, chirp, t + 0.18 * k)
    return out


@dataclass
class Mix:
    """Everything the sensor receives, split by where it comes from."""

    directional: list  # [(dry signal, uv [F, 2])]: sources the array resolves
    diffuse: np.ndarray  # reverberation tails, wind, ventilation, sensor noise
    microphone: np.ndarray  # what microphone 0 records: all of it
    interferer_uv: np.ndarray | None = None
    interferer_active: np.ndarray | None = None  # [F] 0..1


def _mix(location: int, scene: Scene, subject: Subject, action: int, seed: int, subject_id: int, rng) -> Mix:
    import scipy.signal

    n = len(scene.target)
    num_frames = n // SAMPLES_PER_FRAME
    level = {8: 1.5, 5: 0.6, 9: 0.6, 1: 0.8}.get(action, 1.0) * subject.loudness
    target = scene.target / (np.sqrt(np.mean(scene.target**2)) + 1e-12) * 0.05 * level
    sensor_noise = 1e-4 * rng.standard_normal(n)
    if location == 1:  # anechoic chamber: the source alone
        return Mix([(target, scene.target_uv)], sensor_noise, target + sensor_noise)

    if location == 2:  # open-space office
        rir = _room_impulse_response(rng)
        colleague_action = int(rng.choice([2, 5, 6]))  # speaking, clicking or typing
        colleague = subject_traits(seed, 100 + subject_id)
        colleague.x = 0.88
        other = _action_scene(colleague_action, colleague, rng, num_frames)
        interferer = other.target / (np.sqrt(np.mean(other.target**2)) + 1e-12) * 0.05 * rng.uniform(0.5, 0.9)
        interferer_uv = np.c_[np.full(num_frames, 0.88), other.target_uv[:, 1] * 0.85]
        reverb = scipy.signal.fftconvolve(target + interferer, rir)[:n] * 0.7
        ventilation = _bandpass_noise(rng, n, 40, 500) * 0.012
        diffuse = reverb + ventilation + sensor_noise
        activity = np.sqrt(np.mean(interferer.reshape(num_frames, -1) ** 2, axis=1))
        return Mix(
            [(target, scene.target_uv), (interferer, interferer_uv)],
            diffuse,
            target + interferer + diffuse,
            interferer_uv,
            activity / (activity.max() + 1e-12),
        )

    # outdoor terrace: gusty wind and distant birds in a tree
    gust = np.interp(np.arange(n), np.linspace(0, n, n // FS + 3), rng.uniform(0.2, 1.0, n // FS + 3))
    wind = _bandpass_noise(rng, n, 20, 250) * gust * 0.04
    birds = _birds(rng, n)
    birds = birds / (np.sqrt(np.mean(birds**2)) + 1e-12) * 0.05 * rng.uniform(0.4, 0.7)
    tree_uv = np.tile([0.1, 0.15], (num_frames, 1))
    traffic = _bandpass_noise(rng, n, 60, 400) * 0.006
    diffuse = wind + traffic + sensor_noise
    activity = np.sqrt(np.mean(birds.reshape(num_frames, -1) ** 2, axis=1))
    return Mix(
        [(target, scene.target_uv), (birds, tree_uv)],
        diffuse,
        target + birds + diffuse,
        tree_uv,
        activity / (activity.max() + 1e-12),
    )


# --------------------------------------------------------------------------- acoustic image


def _mel_filterbank(num_bands=NUM_BANDS, low=100.0, high=6000.0):
    freqs = np.fft.rfftfreq(SAMPLES_PER_FRAME, 1 / FS)
    mel = lambda f: 2595 * np.log10(1 + f / 700)  # noqa: E731
    edges = 700 * (10 ** (np.linspace(mel(low), mel(high), num_bands + 2) / 2595) - 1)
    bank = np.zeros((len(freqs), num_bands))
    for b in range(num_bands):
        lo, mid, hi = edges[b : b + 3]
        bank[:, b] = np.clip(np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)), 0, None)
    return bank, edges[1:-1]


_FILTERBANK, BAND_CENTRES = _mel_filterbank()


def _band_power(signal):
    frames = signal.reshape(-1, SAMPLES_PER_FRAME) * np.hanning(SAMPLES_PER_FRAME)
    return (np.abs(np.fft.rfft(frames, axis=1)) ** 2) @ _FILTERBANK  # [F, B]


def psf_sigma_pixels(freq_hz):
    """Gaussian width of the array's main lobe: FWHM ~ 0.89 lambda / D, in image pixels."""
    fwhm_rad = 0.89 * SPEED_OF_SOUND / (np.asarray(freq_hz) * APERTURE_M)
    return np.clip(fwhm_rad / 2.355 / (FIELD_OF_VIEW_RAD / COLS), 0.7, 20.0)


def _dct_matrix(num_bands=NUM_BANDS, num_coeffs=COEFFS):
    """Orthonormal DCT-II, first `num_coeffs` rows: log mel power -> MFCC."""
    k = np.arange(num_coeffs)[:, None]
    b = np.arange(num_bands)[None, :]
    matrix = np.cos(np.pi * k * (2 * b + 1) / (2 * num_bands)) * np.sqrt(2 / num_bands)
    matrix[0] /= np.sqrt(2)
    return matrix.T.astype(np.float32)  # [B, K]


_DCT = _dct_matrix()


def acoustic_images(mix: Mix) -> np.ndarray:
    """[F, 36, 48, 12] MFCC-like acoustic images of a mix."""
    sigma = psf_sigma_pixels(BAND_CENTRES).astype(np.float32)  # [B]
    rows, cols = np.arange(ROWS, dtype=np.float32) + 0.5, np.arange(COLS, dtype=np.float32) + 0.5
    array_gain = np.clip((BAND_CENTRES / 400.0) ** 2, 1.0, 128.0)  # diffuse noise is incoherent across mics
    floor = (_band_power(mix.diffuse) / array_gain).astype(np.float32)  # [F, B]
    power = np.broadcast_to(floor[:, None, None, :], (len(floor), ROWS, COLS, NUM_BANDS)).copy()
    for signal, uv in mix.directional:
        energy = _band_power(signal).astype(np.float32)  # [F, B]
        dy = (rows[None, :] - uv[:, 1:2].astype(np.float32) * ROWS) ** 2  # [F, R]
        dx = (cols[None, :] - uv[:, 0:1].astype(np.float32) * COLS) ** 2  # [F, C]
        gy = np.exp(-dy[:, :, None] / (2 * sigma**2)) * energy[:, None, :]  # [F, R, B]
        gx = np.exp(-dx[:, :, None] / (2 * sigma**2))  # [F, C, B]
        power += gy[:, :, None, :] * gx[:, None, :, :]
        power += SIDELOBE_LEVEL * energy[:, None, None, :]
    power += 1e-6
    np.log(power, out=power)
    coefficients = power @ _DCT
    return (np.round(coefficients / MFCC_STEP) * MFCC_STEP).astype(np.float32)


# --------------------------------------------------------------------------- video

_BACKGROUNDS: dict = {}


def _background(location: int, height: int, width: int) -> np.ndarray:
    import cv2

    key = (location, height, width)
    if key in _BACKGROUNDS:
        return _BACKGROUNDS[key]
    image = np.zeros((height, width, 3), np.uint8)
    unit = max(4, width // 16)
    if location == 1:  # anechoic chamber: foam wedges everywhere
        image[:] = (70, 60, 55)
        for y in range(0, height, unit):
            for x in range(0, width, unit):
                pts = np.array([[x, y + unit], [x + unit // 2, y], [x + unit, y + unit]], np.int32)
                cv2.fillPoly(image, [pts], (92, 82, 76))
    elif location == 2:  # office: wall, window, floor, the colleague's desk on the right
        image[:] = (180, 200, 215)
        image[int(0.78 * height) :] = (110, 115, 120)
        cv2.rectangle(
            image, (int(0.05 * width), int(0.08 * height)), (int(0.3 * width), int(0.35 * height)), (235, 215, 175), -1
        )
        cv2.rectangle(image, (int(0.78 * width), int(0.6 * height)), (width, int(0.66 * height)), (60, 90, 140), -1)
    else:  # terrace: sky, a tree top left, railing, tiled floor
        for y in range(height):
            image[y] = np.array((235, 200, 150)) + (np.array((250, 232, 205)) - (235, 200, 150)) * y / height
        cv2.circle(image, (int(0.1 * width), int(0.15 * height)), int(0.14 * height), (40, 110, 50), -1)
        cv2.line(image, (0, int(0.62 * height)), (width, int(0.62 * height)), (90, 90, 90), max(1, height // 60))
        image[int(0.8 * height) :] = (120, 130, 150)
    _BACKGROUNDS[key] = image
    return image


def _draw_person(image, x, y_offset, shirt, skin, hands, mouth, scale=1.0):
    import cv2

    height, width = image.shape[:2]
    unit = min(height, width)
    px = lambda u, v: (int(u * width), int(v * height))  # noqa: E731
    head = px(x, 0.2 * scale + y_offset + (1 - scale) * 0.3)
    torso_top = 0.3 * scale + y_offset + (1 - scale) * 0.3
    cv2.rectangle(image, px(x - 0.1 * scale, torso_top), px(x + 0.1 * scale, torso_top + 0.42 * scale), shirt, -1)
    cv2.circle(image, head, int(0.07 * unit * scale), skin, -1)
    if mouth is not None:
        cv2.ellipse(
            image,
            px(x, 0.25 * scale + y_offset + (1 - scale) * 0.3),
            (max(1, int(0.02 * unit * scale)), max(1, int((0.005 + 0.02 * mouth) * unit * scale))),
            0,
            0,
            360,
            (40, 30, 90),
            -1,
        )
    for side, hand in zip((-1, 1), hands, strict=True):
        shoulder = px(x + side * 0.09 * scale, torso_top + 0.03)
        cv2.line(image, shoulder, px(*hand), shirt, max(1, int(0.03 * unit * scale)))
        cv2.circle(image, px(*hand), max(1, int(0.025 * unit * scale)), skin, -1)


def _draw_prop(image, scene: Scene, i: int):
    import cv2

    height, width = image.shape[:2]
    unit = min(height, width)
    px = lambda u, v: (int(u * width), int(v * height))  # noqa: E731
    thick = max(1, unit // 60)
    u, v = scene.prop_uv[i]
    state = 0.0 if scene.prop_state is None else float(scene.prop_state[i])
    if scene.prop == "kendama":
        hand = scene.hands[i, 1]
        cv2.line(image, px(*hand), px(u, v), (200, 200, 200), 1)
        cv2.rectangle(image, px(hand[0] - 0.015, hand[1] - 0.04), px(hand[0] + 0.015, hand[1]), (40, 80, 140), -1)
        cv2.circle(image, px(u, v), max(2, unit // 30), (40, 40, 210), -1)
    elif scene.prop == "pen":
        cv2.line(image, px(u - 0.03, v - 0.04), px(u + 0.01, v + 0.01), (160, 60, 20), thick)
    elif scene.prop == "keyboard":
        cv2.rectangle(image, px(u - 0.15, v - 0.025), px(u + 0.15, v + 0.025), (50, 50, 50), -1)
        for k in range(1, 10):
            x = u - 0.15 + 0.03 * k
            cv2.line(image, px(x, v - 0.02), px(x, v + 0.02), (110, 110, 110), 1)
    elif scene.prop == "door":
        cv2.rectangle(image, px(u - 0.06, 0.15), px(u + 0.04, 0.98), (40, 75, 120), -1)
    elif scene.prop == "hammer":
        head = (u, v - 0.06)
        cv2.line(image, px(u, v + 0.02), px(*head), (60, 100, 150), thick)
        cv2.rectangle(
            image, px(head[0] - 0.03, head[1] - 0.015), px(head[0] + 0.03, head[1] + 0.015), (150, 150, 150), -1
        )
    elif scene.prop == "peanut":
        cv2.ellipse(image, px(u, v), (max(2, unit // 40), max(1, unit // 70)), 30, 0, 360, (120, 170, 210), -1)
    elif scene.prop in ("paper_rip", "paper"):
        left, right = scene.hands[i, 0], scene.hands[i, 1]
        if scene.prop == "paper":
            left, right = (u - 0.06, v), (u + 0.04, v)
        gap = 0.03 * state
        mid = (left[0] + right[0]) / 2
        cv2.rectangle(image, px(left[0], v - 0.08), px(mid - gap, v + 0.06), (245, 245, 245), -1)
        cv2.rectangle(image, px(mid + gap, v - 0.08), px(right[0], v + 0.06), (245, 245, 245), -1)
    elif scene.prop == "plastic":
        radius = max(2, int((0.035 - 0.01 * state) * unit))
        cv2.circle(image, px(u, v), radius, (230, 200, 170), -1)
        cv2.circle(image, px(u - 0.01, v - 0.01), max(1, radius // 3), (255, 255, 255), -1)
    elif scene.prop == "stick":
        angle = np.pi / 2 * state
        length = 0.18
        end = (u + length * np.sin(angle), v - length * np.cos(angle) * (1 - state) + 0.01)
        cv2.line(image, px(u, v), px(*end), (50, 90, 140), thick + 1)


def render_frames(location: int, scene: Scene, subject: Subject, mix: Mix, frame_size, rng) -> np.ndarray:
    """[F, H, W, 3] uint8 BGR frames of the scene."""
    import cv2

    height, width = frame_size
    background = _background(location, height, width)
    brightness = rng.uniform(0.85, 1.1) if location == 3 else 1.0
    frames = np.empty((len(scene.hands), height, width, 3), np.uint8)
    for i in range(len(scene.hands)):
        image = background.copy()
        if location == 2 and mix.interferer_uv is not None:  # the colleague, moving when active
            bob = 0.01 * mix.interferer_active[i]
            hands = [(0.84, 0.62 + bob), (0.92, 0.62 - bob)]
            _draw_person(image, 0.88, 0.02, (90, 120, 60), (120, 150, 200), hands, mix.interferer_active[i], scale=0.6)
        if scene.table:
            cv2.rectangle(
                image,
                (int((subject.x - 0.25) * width), int((0.7 + subject.y) * height)),
                (int((subject.x + 0.25) * width), height),
                (70, 110, 160),
                -1,
            )
        mouth = None if scene.mouth is None else float(scene.mouth[i])
        _draw_person(image, subject.x, subject.y, subject.shirt, subject.skin, scene.hands[i], mouth)
        if scene.prop is not None:
            _draw_prop(image, scene, i)
        noise = rng.normal(0, 3, image.shape)
        frames[i] = np.clip(image * brightness + noise, 0, 255).astype(np.uint8)
    return frames


# --------------------------------------------------------------------------- sequences


def simulate_sequence(location: int, subject_id: int, action: int, options: SynthOptions):
    """(acoustic images [F, 36, 48, 12] f32, microphone [F, 1, 1024] int32, frames [F, H, W, 3] u8)."""
    rng = np.random.default_rng([options.seed, location, subject_id, action])
    subject = subject_traits(options.seed, subject_id)
    scene = _action_scene(action, subject, rng, options.num_frames)
    mix = _mix(location, scene, subject, action, options.seed, subject_id, rng)
    images = acoustic_images(mix)
    # 24-bit full scale in an int32 word, as the array's ADC delivers it.
    microphone = np.clip(np.round(mix.microphone * 2**23), -(2**31), 2**31 - 1).astype(np.int32)
    microphone = microphone.reshape(-1, 1, SAMPLES_PER_FRAME)
    frames = render_frames(location, scene, subject, mix, options.frame_size, rng)
    return images, microphone, frames


def write_sequence(root: str | Path, location: int, subject_id: int, action: int, options: SynthOptions) -> int:
    """Simulate one sequence and write it in the raw layout; returns the number of frames."""
    import cv2
    import scipy.io

    images, microphone, frames = simulate_sequence(location, subject_id, action, options)
    relative = Path(f"Location_{location:02d}/Subject_{subject_id:02d}/Action_{action:03d}")
    mat_dir = Path(root) / "matfiles" / relative / "MFCC_Image"
    audio_dir = Path(root) / "sync" / relative / "audio"
    video_dir = Path(root) / "sync" / relative / "video"
    for folder in (mat_dir, audio_dir, video_dir):
        folder.mkdir(parents=True, exist_ok=True)
    for i in range(len(images)):
        # Stored as MATLAB single: the converter casts to float32 anyway, and it halves the size.
        scipy.io.savemat(mat_dir / f"Data_{i + 1}.mat", {"MFCC": images[i]}, do_compression=False)
        np.save(audio_dir / f"A_{i + 1:06d}.npy", microphone[i])
        cv2.imwrite(str(video_dir / f"I_{i + 1:06d}.jpeg"), frames[i], [cv2.IMWRITE_JPEG_QUALITY, 90])
    return len(images)


def synthesize_dataset(out_dir: str | Path, options: SynthOptions, jobs: int = 1) -> dict:
    """Write the whole synthetic dataset to `out_dir` (replaced atomically)."""
    start = time.perf_counter()
    tasks = [
        (loc, sub, act)
        for loc in options.locations
        for sub in range(1, options.subjects + 1)
        for act in options.actions
    ]
    with atomic_directory(out_dir) as staging:
        if jobs <= 1:
            counts = [write_sequence(staging, *task, options) for task in tasks]
        else:
            with process_pool(min(jobs, len(tasks))) as pool:
                futures = [pool.submit(write_sequence, staging, *task, options) for task in tasks]
                counts = [future.result() for future in futures]
        summary = {
            "generator": "avdistill.synth",
            "options": asdict(options),
            "sequences": len(tasks),
            "frames": int(sum(counts)),
            "actions": {a: ACTION_NAMES[a] for a in options.actions},
        }
        (staging / "synthetic.json").write_text(json.dumps(summary, indent=2) + "\n")
    log.info(
        "synthesised %d sequences (%d frames) in %.1f s", len(tasks), summary["frames"], time.perf_counter() - start
    )
    return summary
