"""``mpcnet restore``'s options, checked once when they are made."""
from __future__ import annotations

from dataclasses import dataclass, field

from mpcnet.restoration import BG_UPSAMPLER_NAMES
from mpcnet.utils.image_io import DEFAULT_MAX_PIXELS


@dataclass
class RestoreOptions:
    upscale: int | None = None  # None: 2 for photos, 1 (the input's size) for aligned faces
    aligned: bool = False  # inputs are already FFHQ-aligned faces: no detection, no paste
    only_center_face: bool = False
    ext: str = "auto"  # auto (keep the input's) | png | jpg
    suffix: str = ""
    save_faces: bool = False
    save_comparison: bool = False
    bg_upsampler: str = "lanczos"
    max_pixels: int = DEFAULT_MAX_PIXELS
    faces_only: bool = False  # photos without a face are not written
    skip_existing: bool = False
    overwrite: bool = False
    fidelity: float = 0.0  # W of :func:`~mpcnet.restoration.stages.blend_fidelity`: 0 the network's face, 1 the input's
    draw_box: bool = False  # draw the detected boxes and landmarks on the output
    upscale_given: bool = field(init=False, default=True)  # False: the default, which a large photo may lower

    def __post_init__(self):
        if self.upscale is None:
            self.upscale, self.upscale_given = (1 if self.aligned else 2), False
        if self.upscale < 1:
            raise ValueError("--upscale must be 1 or more")
        if self.bg_upsampler not in BG_UPSAMPLER_NAMES:
            raise ValueError(f"unknown --bg-upsampler '{self.bg_upsampler}'; "
                             f"choose from {', '.join(BG_UPSAMPLER_NAMES)}")
        if self.bg_upsampler == "none" and self.upscale != 1:
            raise ValueError("--bg-upsampler none keeps the photo's size: use it with --upscale 1")
        if any(c in self.suffix for c in "/\\\0"):
            raise ValueError(f"--suffix {self.suffix!r} is part of a file name: it may not hold / or \\")
        if self.ext not in ("auto", "png", "jpg"):
            raise ValueError("--ext must be auto, png or jpg")
        if self.overwrite and self.skip_existing:
            raise ValueError("--overwrite and --skip-existing contradict each other: give one of them")
        if self.max_pixels < 1:
            raise ValueError("--max-pixels must be 1 or more")
        if not 0 <= self.fidelity <= 1:
            raise ValueError(f"--fidelity must be between 0 and 1, not {self.fidelity}")
        if self.draw_box and self.aligned:
            raise ValueError("--draw-box draws detections, and --aligned inputs are not detected")
