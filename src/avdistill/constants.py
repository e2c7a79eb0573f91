"""Facts about the DualCam "audio-visually indicated actions" dataset and its TFRecords.

Every number here comes from the original converter and loader (see
`original-implementation.md` §1-§2); writer, reader and synthetic generator share them.
"""

FRAMES_PER_SECOND = 12  # video frame rate; one acoustic image and 1024 audio samples per frame
SAMPLES_PER_FRAME = 1024
MIC_SAMPLE_RATE = FRAMES_PER_SECOND * SAMPLES_PER_FRAME  # 12,288 Hz
MIN_SECONDS = 30  # every sequence becomes exactly 30 one-second records (wrap-around)

ACOUSTIC_IMAGE_SHAPE = (36, 48, 12)  # rows x cols x MFCC coefficients

NUM_ACTIONS = 14
NUM_LOCATIONS = 3
NUM_SUBJECTS = 9

ACTION_NAMES = (
    "clapping",
    "snapping fingers",
    "speaking",
    "whistling",
    "playing kendama",
    "clicking",
    "typing",
    "knocking",
    "hammering",
    "peanut breaking",
    "paper ripping",
    "plastic crumpling",
    "paper shaking",
    "stick dropping",
)
LOCATION_NAMES = ("anechoic chamber", "open space office", "outdoor terrace")

# Modalities by the original's numbering (convert_data.py --modalities 0 1 2).
MODALITIES = {0: "acoustic", 1: "audio", 2: "video"}
MODALITY_IDS = {name: idx for idx, name in MODALITIES.items()}

# TFRecord keys (tf.train.SequenceExample), exactly as the original wrote them.
CONTEXT_LABEL_KEYS = ("action", "location", "subject")
CONTEXT_KEYS = {
    "acoustic": ("audio_image/height", "audio_image/width", "audio_image/depth"),
    "audio": ("audio_data/mics", "audio_data/samples"),
    "video": ("video/height", "video/width", "video/depth"),
}
SEQUENCE_KEYS = {"acoustic": "audio/image", "audio": "audio/data", "video": "video/image"}

# Loader constants (codebase/data/actions_data.py).
TARGET_SAMPLE_RATE = 22050  # waveform rate fed to SoundNet / HearNet
WAVEFORM_SCALE = 256.0  # waveform range [-256, 256], SoundNet's input scale
STFT_FRAME_LENGTH = 440
STFT_FRAME_STEP = 220
STFT_FFT_LENGTH = 512
VIDEO_RESIZE_SMALLEST_SIDE = 256  # slim vgg_preprocessing _RESIZE_SIDE_MIN
VIDEO_CROP_SIZE = 224
VGG_RGB_MEANS = (123.68, 116.78, 103.94)
TEMPORAL_FRAMES = 5  # frames picked for the temporal ResNet-50
