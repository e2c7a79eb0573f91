"""The synthetic scenes: who does what, what each action sounds like and where it is, and
what the sensor receives at each location (the sources the array resolves, the diffuse
sound, the single microphone's mix). `avdistill.data.synth` renders them into acoustic
images, video and the raw dataset layout; its docstring says what is modelled and what not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avdistill.constants import (
    FRAMES_PER_SECOND,
    MIC_SAMPLE_RATE,
    SAMPLES_PER_FRAME,
)

FS = MIC_SAMPLE_RATE


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


def action_scene(action: int, subject: Subject, rng, num_frames: int) -> Scene:
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
    person_uv: np.ndarray | None = None  # [F, 2]: the second person (office, terrace)
    person_active: np.ndarray | None = None  # [F] 0..1: how loud they are


# Relative level of each raw action's sound (hammering is loud, clicks and peanuts soft).
ACTION_LEVEL = {8: 1.5, 5: 0.6, 9: 0.6, 1: 0.8}
OTHER_PERSON_X = 0.88  # the second person's place: the right edge of the view


def _at_level(signal: np.ndarray, level: float) -> np.ndarray:
    """`signal` scaled to an RMS of 0.05 x `level` (level 1: a subject's ordinary action)."""
    return signal / (np.sqrt(np.mean(signal**2)) + 1e-12) * 0.05 * level


def _other_person(other_actions: tuple, seed: int, subject_id: int, rng, num_frames: int):
    """The office colleague or the terrace passer-by: a second person at the right edge doing
    one of the dataset's other actions, as loud as a subject (0.7-1.3 of the action's level,
    a subject's range of loudness). The single microphone cannot tell which of the two
    sounds is the subject's; the acoustic image and the video place them. With no other
    action (a one-action dataset) the colleague speaks, clicks or types, as before."""
    person_action = int(rng.choice(list(other_actions or (2, 5, 6))))
    person = subject_traits(seed, 100 + subject_id)
    person.x = OTHER_PERSON_X
    other = action_scene(person_action, person, rng, num_frames)
    level = ACTION_LEVEL.get(person_action, 1.0) * rng.uniform(0.7, 1.3)
    signal = _at_level(other.target, level)
    uv = np.c_[np.full(num_frames, OTHER_PERSON_X), other.target_uv[:, 1] * 0.85]
    activity = np.sqrt(np.mean(signal.reshape(num_frames, -1) ** 2, axis=1))
    return signal, uv, activity / (activity.max() + 1e-12)


def mix(
    location: int,
    scene: Scene,
    subject: Subject,
    action: int,
    seed: int,
    subject_id: int,
    rng,
    other_actions: tuple = (),
) -> Mix:
    """What the sensor receives. `other_actions`: the dataset's actions but the subject's,
    among which the second person of the office and the terrace picks theirs."""
    import scipy.signal

    n = len(scene.target)
    num_frames = n // SAMPLES_PER_FRAME
    level = ACTION_LEVEL.get(action, 1.0) * subject.loudness
    target = _at_level(scene.target, level)
    sensor_noise = 1e-4 * rng.standard_normal(n)
    if location == 1:  # anechoic chamber: the source alone
        return Mix([(target, scene.target_uv)], sensor_noise, target + sensor_noise)

    person, person_uv, activity = _other_person(other_actions, seed, subject_id, rng, num_frames)
    if location == 2:  # open-space office, with a colleague at the next desk
        rir = _room_impulse_response(rng)
        reverb = scipy.signal.fftconvolve(target + person, rir)[:n] * 0.7
        ventilation = _bandpass_noise(rng, n, 40, 500) * 0.012
        diffuse = reverb + ventilation + sensor_noise
        return Mix(
            [(target, scene.target_uv), (person, person_uv)],
            diffuse,
            target + person + diffuse,
            person_uv,
            activity,
        )

    # outdoor terrace: a passer-by, gusty wind and distant birds in a tree
    gust = np.interp(np.arange(n), np.linspace(0, n, n // FS + 3), rng.uniform(0.2, 1.0, n // FS + 3))
    wind = _bandpass_noise(rng, n, 20, 250) * gust * 0.04
    birds = _birds(rng, n)
    birds = _at_level(birds, rng.uniform(0.4, 0.7))
    tree_uv = np.tile([0.1, 0.15], (num_frames, 1))
    traffic = _bandpass_noise(rng, n, 60, 400) * 0.006
    diffuse = wind + traffic + sensor_noise
    return Mix(
        [(target, scene.target_uv), (person, person_uv), (birds, tree_uv)],
        diffuse,
        target + person + birds + diffuse,
        person_uv,
        activity,
    )
