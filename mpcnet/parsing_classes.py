"""The face-parsing classes: CelebAMask-HQ's (MPCNet's parsing prior, section 3.2) and facexlib's
(ParseNet, restore's optional paste mask), by name, and which of them are pasted back."""
from __future__ import annotations

import numpy as np

# CelebAMask-HQ's label order (its g_mask.py): background is 0, part k of this list is k + 1;
# later parts are painted over earlier ones, as in the dataset's own recipe.
CELEBAMASK_PARTS = ("skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear",
                    "mouth", "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth")
NUM_PARSE_CLASSES = len(CELEBAMASK_PARTS) + 1
# label permutation of a horizontal flip: left and right parts swap
FLIP_LABELS = np.arange(NUM_PARSE_CLASSES, dtype=np.uint8)
for _l, _r in (("l_eye", "r_eye"), ("l_brow", "r_brow"), ("l_ear", "r_ear")):
    _a, _b = CELEBAMASK_PARTS.index(_l) + 1, CELEBAMASK_PARTS.index(_r) + 1
    FLIP_LABELS[_a], FLIP_LABELS[_b] = _b, _a

# facexlib's (PSFRGAN's) ParseNet class order; MPCNet's parsing prior uses CelebAMask-HQ's (CELEBAMASK_PARTS)
FACEXLIB_PARTS = ("background", "skin", "l_brow", "r_brow", "l_eye", "r_eye", "eye_g", "l_ear", "r_ear", "ear_r",
                  "nose", "mouth", "u_lip", "l_lip", "neck", "neck_l", "cloth", "hair", "hat")

# CelebAMask-HQ parts pasted back, as GFPGAN's helper does; background, neck, cloth, hair and hat
# stay from the photo.
PASTED_PARTS = ("skin", "l_brow", "r_brow", "l_eye", "r_eye", "eye_g", "l_ear", "r_ear", "ear_r", "nose", "mouth",
                "u_lip", "l_lip", "neck_l")


def pasted_classes(parts: tuple) -> tuple[int, ...]:
    """Indices of :data:`PASTED_PARTS` in a parser's class order."""
    return tuple(i for i, part in enumerate(parts) if part in PASTED_PARTS)


PARSE_FACE_CLASSES = pasted_classes(FACEXLIB_PARTS)  # facexlib's ParseNet
MPCNET_FACE_CLASSES = pasted_classes(("background", *CELEBAMASK_PARTS))  # MPCNet's parsing prior
