"""avdistill: audio-visual model distillation with acoustic images (Pérez et al., WACV 2020)."""

__version__ = "0.1.0"
