"""Whole-photo face restoration: detect, align to the FFHQ template, restore, paste back.

The names below are what the CLI needs to build its options; they live here, free of torch, so
``mpcnet --help`` starts fast.
"""

DETECTORS = ("retinaface", "mtcnn", "yunet")
BACKENDS = ("torch", "onnxruntime")  # what runs the face network
BG_UPSAMPLER_NAMES = ("lanczos", "bicubic", "realesrgan", "none")
VIDEO_CODECS = ("auto", "libx264", "libx265", "libvpx-vp9")  # auto: libx264, VP9 in .webm
# The project's own small checkpoint (trained in issue 8), used when no --weights is given.
DEFAULT_WEIGHTS = "mpcnet-s256"
# Peers `mpcnet eval --method` runs through the same pipeline (mpcnet.restoration.peers), and their
# default registry weights.
PEER_METHODS = {"gfpgan": "gfpgan-v1.4", "restoreformer": "restoreformer"}
METHODS = ("mpcnet", *PEER_METHODS)
