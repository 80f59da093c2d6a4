"""Whole-photo face restoration: detect, align to the FFHQ template, restore, paste back.

The names below are what the CLI needs to build its options; they live here, free of torch, so
``mpcnet --help`` starts fast.
"""

DETECTORS = ("retinaface", "mtcnn", "yunet")
BACKENDS = ("torch", "onnxruntime")  # what runs the face network
BG_UPSAMPLER_NAMES = ("lanczos", "bicubic", "realesrgan", "none")
# The project's own small checkpoint (trained in issue 8), used when no --weights is given.
DEFAULT_WEIGHTS = "mpcnet-tiny"
