"""How good the pseudo parsing labels are: IoU against real CelebAMask-HQ maps where image and map
are both at hand, and overlays of the labels on faces for a person to judge."""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from mpcnet.data.celebamask_parsing_dataset import CELEBAMASK_COLOURS, decode_colour_map
from mpcnet.data.pool_labels import label_path, labelled_faces
from mpcnet.data.pseudo_parsing import LABEL, LANDMARK_PARTS, LandmarkDetector, rasterise
from mpcnet.metrics.parsing import class_iou, confusion, mean_iou
from mpcnet.parsing_classes import MPCNET_FACE_CLASSES, NUM_PARSE_CLASSES
from mpcnet.utils.image_io import list_images

# A real map's classes that landmarks cannot give count as background, so that both sides have
# the same classes.
LANDMARK_LABEL = np.zeros(NUM_PARSE_CLASSES, np.uint8)
for _part in LANDMARK_PARTS:
    LANDMARK_LABEL[LABEL[_part]] = LABEL[_part]


def read_reference_map(path: str | Path) -> np.ndarray:
    """A CelebAMask-HQ map as uint8 class ids: colour-coded (its g_color.py) or already class ids."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path} is missing or not an image")
    if (image[..., 0] == image[..., 1]).all() and (image[..., 1] == image[..., 2]).all() \
            and image.max() < NUM_PARSE_CLASSES:
        return image[..., 0].copy()
    return decode_colour_map(image[..., ::-1])


@dataclass
class Agreement:
    """Pseudo labels against real maps, over the landmark classes (others merged into background)."""

    pairs: list[str] = field(default_factory=list)
    methods: dict[str, str] = field(default_factory=dict)
    matrix: torch.Tensor = field(default_factory=lambda: torch.zeros(NUM_PARSE_CLASSES, NUM_PARSE_CLASSES,
                                                                      dtype=torch.int64))
    face_matrix: torch.Tensor = field(default_factory=lambda: torch.zeros(2, 2, dtype=torch.int64))

    def add(self, name: str, pseudo: np.ndarray, reference: np.ndarray, method: str) -> None:
        self.pairs.append(name)
        self.methods[name] = method
        self.matrix += confusion(pseudo, LANDMARK_LABEL[reference], NUM_PARSE_CLASSES)
        # the region restore pastes back (skin and inner face parts): what the paste mask is made of
        self.face_matrix += confusion(np.isin(pseudo, MPCNET_FACE_CLASSES), np.isin(reference, MPCNET_FACE_CLASSES), 2)

    def summary(self) -> dict:
        iou = class_iou(self.matrix)
        return {"pairs": len(self.pairs),
                "miou": mean_iou(self.matrix, [LABEL[p] for p in LANDMARK_PARTS]),
                "iou": {part: None if iou[LABEL[part]].isnan() else round(float(iou[LABEL[part]]), 4)
                        for part in LANDMARK_PARTS},
                "face_region_iou": round(float(class_iou(self.face_matrix)[1]), 4),
                "methods": self.methods}


def agreement(images: str | Path, maps: str | Path, detector: LandmarkDetector | None = None) -> Agreement:
    """Pseudo labels of every image in ``images`` that has a map ``<stem>.png`` in ``maps``, drawn at
    the map's size, against that map."""
    detector = detector or LandmarkDetector()
    result = Agreement()
    for path in list_images(images)[1]:
        map_path = Path(maps) / f"{path.stem}.png"
        if not map_path.is_file():
            continue
        reference = read_reference_map(map_path)
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"{path} is not a readable image")
        image = cv2.resize(image, reference.shape[::-1], interpolation=cv2.INTER_AREA)
        found = detector(image)
        result.add(path.stem, rasterise(found.points, reference.shape[0], image), reference, found.method)
    if not result.pairs:
        raise FileNotFoundError(f"no image in {images} has a map <stem>.png in {maps}")
    return result


def overlay(bgr: np.ndarray, label: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """The face with its label map blended in CelebAMask-HQ's colours (background left as is)."""
    colours = np.array(CELEBAMASK_COLOURS, np.float32)[:, ::-1]
    out = bgr.astype(np.float32)
    parts = label > 0
    out[parts] = (1 - alpha) * out[parts] + alpha * colours[label[parts]]
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def contact_sheet(pairs: list[tuple[np.ndarray, np.ndarray]], per_row: int = 3, tile: int = 160) -> bytes:
    """PNG bytes (256-colour palette, to stay small) of face | overlay pairs, ``per_row`` pairs a row."""
    from mpcnet.eval_report import sample_grid

    cells = [img for face, label in pairs for img in (face, overlay(face, label))]
    cells += [np.full_like(cells[0], 255)] * (-len(cells) % (2 * per_row))
    grid = sample_grid([cells[i:i + 2 * per_row] for i in range(0, len(cells), 2 * per_row)], tile)
    buffer = io.BytesIO()
    Image.fromarray(grid[..., ::-1]).quantize(256, method=Image.Quantize.MEDIANCUT).save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def pool_contact_sheet(pool: str | Path, count: int = 12) -> tuple[bytes, int]:
    """:func:`contact_sheet` of ``count`` faces spread evenly over the pool's labelled faces (in list
    order), and how many faces it shows."""
    faces = labelled_faces(pool)
    if not faces:
        raise FileNotFoundError(f"{pool} has no labelled faces: run scripts/make_parsing_labels.py first")
    count = min(count, len(faces))
    chosen = [faces[i * len(faces) // count] for i in range(count)]
    pairs = [(cv2.imread(str(Path(pool) / face)), cv2.imread(str(label_path(pool, face)), cv2.IMREAD_GRAYSCALE))
             for face in chosen]
    return contact_sheet(pairs), count
