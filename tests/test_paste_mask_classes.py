"""The paste mask's classes by name, in both parsers' class orders (written out here from their
sources, not imported): skin and facial features are pasted; hair, hat, neck, cloth and the
background stay from the photo."""
from __future__ import annotations

import ast
from pathlib import Path

import cv2
import numpy as np
import pytest

from mpcnet.parsing_classes import MPCNET_FACE_CLASSES, PARSE_FACE_CLASSES, pasted_classes
from mpcnet.restoration.paste import parse_mask

# facexlib's ParseNet (PSFRGAN) output order
FACEXLIB_ORDER = ["background", "skin", "l_brow", "r_brow", "l_eye", "r_eye", "eye_g", "l_ear", "r_ear", "ear_r",
                  "nose", "mouth", "u_lip", "l_lip", "neck", "neck_l", "cloth", "hair", "hat"]
# CelebAMask-HQ's part order (its label files), background first: MPCNet's parsing prior
CELEBAMASK_ORDER = ["background", "skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear",
                    "mouth", "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth"]
PASTED = {"skin", "nose", "l_eye", "r_eye", "l_brow", "r_brow", "mouth", "u_lip", "l_lip", "eye_g", "l_ear",
          "r_ear", "ear_r", "neck_l"}
KEPT_FROM_PHOTO = {"background", "hair", "hat", "neck", "cloth"}


@pytest.mark.parametrize("order,classes", [(FACEXLIB_ORDER, PARSE_FACE_CLASSES),
                                           (CELEBAMASK_ORDER, MPCNET_FACE_CLASSES)], ids=["facexlib", "mpcnet"])
def test_pasted_classes_by_name(order, classes):
    assert PASTED | KEPT_FROM_PHOTO == set(order)
    assert {order[i] for i in classes} == PASTED
    assert pasted_classes(tuple(order)) == tuple(sorted(order.index(name) for name in PASTED))


@pytest.mark.parametrize("order,classes", [(FACEXLIB_ORDER, PARSE_FACE_CLASSES),
                                           (CELEBAMASK_ORDER, MPCNET_FACE_CLASSES)], ids=["facexlib", "mpcnet"])
@pytest.mark.parametrize("part", sorted(PASTED | KEPT_FROM_PHOTO))
def test_a_region_of_each_class_is_pasted_or_kept(order, classes, part):
    """A 200×200 block of one class inside background: its centre is in the mask iff it is pasted."""
    labels = np.zeros((512, 512), np.int64)
    labels[156:356, 156:356] = order.index(part)
    mask = parse_mask(labels, classes)
    if part in PASTED:
        assert mask[256, 256] > 0.99 and mask[20, 20] < 1e-3
    else:
        assert mask.max() < 1e-6


def test_mask_is_feathered_and_zero_on_the_border():
    labels = np.ones((512, 512), np.int64)  # skin everywhere (index 1 in both orders)
    mask = parse_mask(labels, PARSE_FACE_CLASSES)
    border = 512 // 50
    assert mask[:border].max() == mask[-border:].max() == mask[:, :border].max() == mask[:, -border:].max() == 0
    assert mask[256, 256] == pytest.approx(1.0, abs=1e-5)
    half = np.zeros((512, 512), np.int64)
    half[:, 256:] = 1  # a straight edge: the mask rises smoothly across it, 0.5 on the edge
    row = parse_mask(half, PARSE_FACE_CLASSES)[256]
    assert row[200] < 0.05 and row[312] > 0.95 and 0.4 < row[255:257].mean() < 0.6
    assert np.all(np.diff(row[200:312]) >= -1e-6)


def test_ellipse_covers_the_ffhq_face_region():
    """The fallback mask: an ellipse centred at (256, 285) with semi-axes 175 × 205 px of a 512 crop,
    feathered (about 0.5 on its outline), the same shape at every crop size."""
    from mpcnet.restoration.paste import ellipse_mask

    m = ellipse_mask(512)
    assert m[285, 256] > 0.99 and m[5, 5] < 1e-3 and m.dtype == np.float32
    for y, x in ((285 - 205, 256), (285 + 205, 256), (285, 256 - 175), (285, 256 + 175)):
        assert 0.35 < m[y, x] < 0.65, (y, x, m[y, x])
    for y, x in ((285 - 160, 256), (285, 256 + 130)):  # inside, away from the outline
        assert m[y, x] > 0.97
    small = ellipse_mask(128)
    assert np.abs(small - cv2.resize(m, (128, 128), interpolation=cv2.INTER_AREA)).max() < 0.12  # pixel rounding at 128


def test_restore_does_not_import_the_training_data_package():
    """The classes live in mpcnet.parsing_classes: nothing ``mpcnet restore`` can import (its lazy imports
    included, followed through our own modules) is in mpcnet.data."""
    root = Path(__file__).resolve().parents[1]
    seen, todo = set(), ["mpcnet_cli.restore"]
    while todo:
        name = todo.pop()
        path = root.joinpath(*name.split("."))
        source = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
        if name in seen or not source.is_file():
            continue  # a third-party module, or a name imported from a module
        seen.add(name)
        parents = name.split(".")
        todo += [".".join(parents[:i]) for i in range(1, len(parents))]
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                todo += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                todo += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    assert {"mpcnet.restoration.scheduler", "mpcnet.restoration.paste", "mpcnet.parsing_classes"} <= seen
    assert not [name for name in seen if name.startswith("mpcnet.data")]
