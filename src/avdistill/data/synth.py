"""A synthetic stand-in for the DualCam actions dataset, written in the original raw layout.

The real dataset (14 actions x 9 subjects x 3 locations) is given by its authors on request.
This module simulates the sensor instead, so that the whole workflow runs from nothing:

* Each action is a sound source with its own temporal and spectral signature (impulsive
  claps and knocks, a whistled melody, voiced speech-like harmonics, fast typing clicks,
  broadband paper noise...) placed where the hands or the object are in the image.
  A subject changes tempo, pitch, loudness and position.
* Each location has its own acoustics: the anechoic chamber is clean; the open-space office
  adds reverberation, diffuse ventilation noise and a colleague at another desk; the
  outdoor terrace adds a passer-by, gusty low-frequency wind and distant birds in a tree.
  The colleague and the passer-by do one of the dataset's other actions, as loud as a
  subject: from the microphone alone, which of the two sounds is the subject's action is
  a guess. (Until 2026-12-04 the colleague only spoke, typed or clicked, at 0.5-0.9 of the
  subject's level, and there was no passer-by; trained for 16 epochs, HearNet then reached
  91 % on `all` from the microphone alone, and the acoustic image had little to add.)
* The microphone track (microphone 0, 12,288 Hz, int32) hears everything mixed.
* The acoustic image is what a beamforming planar array shows: per pixel of the 36 x 48 grid,
  the mel-band power arriving from that direction, each source spread by a point-spread
  function whose width follows the beam width lambda/D of a 0.5 m aperture (blurry at low
  frequency, sharp at high frequency), diffuse noise reduced by the array gain; then
  log and DCT to 12 MFCC-like coefficients. Spatially separate interferers are separable in
  the image but mixed in the single-microphone track: the acoustic-image teacher's edge.
* The video shows the scene: the subject, where the hands or object are and how they move,
  the location's background and the second person (office, terrace).

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
    NUM_ACTIONS,
    SAMPLES_PER_FRAME,
)
from avdistill.data.scenes import FS, Mix, Scene, Subject, action_scene, mix, subject_traits
from avdistill.fileio import atomic_directory
from avdistill.parallel import process_pool

log = logging.getLogger(__name__)

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
        if mix.person_uv is not None:  # the colleague or passer-by, moving when active
            bob = 0.01 * mix.person_active[i]
            hands = [(0.84, 0.62 + bob), (0.92, 0.62 - bob)]
            _draw_person(image, 0.88, 0.02, (90, 120, 60), (120, 150, 200), hands, mix.person_active[i], scale=0.6)
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
    scene = action_scene(action, subject, rng, options.num_frames)
    other_actions = tuple(a for a in options.actions if a != action)
    sound = mix(location, scene, subject, action, options.seed, subject_id, rng, other_actions)
    images = acoustic_images(sound)
    # 24-bit full scale in an int32 word, as the array's ADC delivers it.
    microphone = np.clip(np.round(sound.microphone * 2**23), -(2**31), 2**31 - 1).astype(np.int32)
    microphone = microphone.reshape(-1, 1, SAMPLES_PER_FRAME)
    frames = render_frames(location, scene, subject, sound, options.frame_size, rng)
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
            "generator": "avdistill.data.synth",
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
