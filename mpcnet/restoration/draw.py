"""``--draw-box``: the detected boxes and five landmarks drawn on the output, to check what was
detected and aligned."""
from __future__ import annotations

import cv2
import numpy as np

BOX_COLOUR = (0.0, 1.0, 0.0)  # BGR in [0, 1]: green boxes
# Image-left eye, image-right eye, nose, image-left and image-right mouth corner (facexlib's colours)
LANDMARK_COLOURS = ((0.0, 0.0, 1.0), (1.0, 1.0, 0.0), (1.0, 0.0, 1.0), (0.0, 1.0, 0.0), (1.0, 0.0, 0.0))


def draw_faces(canvas: np.ndarray, faces: list, upscale: float = 1) -> None:
    """Draw each :class:`~mpcnet.restoration.detectors.Face` (input pixels) on ``canvas`` (BGR,
    float32 in [0, 1] or uint8/uint16, the input upscaled ``upscale`` times) in place; lines scale
    with the canvas."""
    thick = max(1, round(max(canvas.shape[:2]) / 400))
    top = 1.0 if canvas.dtype == np.float32 else float(np.iinfo(canvas.dtype).max)

    def at(xy):  # input pixel centre → output pixel (as inverse_affine maps it)
        return tuple(int(round(v * upscale + (upscale - 1) / 2)) for v in xy)

    for face in faces:
        cv2.rectangle(canvas, at(face.box[:2]), at(face.box[2:]), [c * top for c in BOX_COLOUR], thick, cv2.LINE_AA)
        for point, colour in zip(face.landmarks, LANDMARK_COLOURS):
            cv2.circle(canvas, at(point), 2 * thick, [c * top for c in colour], -1, cv2.LINE_AA)
