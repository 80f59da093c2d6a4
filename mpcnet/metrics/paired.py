"""The full-reference metrics that need a network, built once per run and applied per (restored, GT) pair.

Each scorer returns ``(values, note)``: the values of the metrics it computes, and a note when the
pair was scored with a fallback (dlib found no face on the GT and used the fixed FFHQ box).
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from mpcnet.metrics import MetricUnavailable, dlib_face

ARCFACE = ("deg_arcface", "cos_arcface")
PairScorer = Callable[[np.ndarray, np.ndarray], tuple[dict[str, float], "str | None"]]


def _lpips(device: str) -> PairScorer:
    from mpcnet.metrics.lpips_metric import LPIPS

    net = LPIPS(device=device)
    return lambda out, ref: ({"lpips": net(out, ref)}, None)


def _arcface(device: str) -> PairScorer:
    from mpcnet.metrics.identity import IdentitySimilarity

    net = IdentitySimilarity(device=device)

    def score(out, ref):
        cos = net(out, ref)
        return {"deg_arcface": math.degrees(math.acos(max(-1.0, min(1.0, cos)))), "cos_arcface": cos}, None
    return score


def _dlib(device: str) -> PairScorer:
    dlib_face.available()

    def score(out, ref):
        s = dlib_face.compare(out, ref)
        note = None if s.face_found else f"dlib's HOG detector found no face on the GT: fixed FFHQ box {dlib_face.FFHQ_BOX}"
        return s.values(), note
    return score


FAMILIES = ((("lpips",), _lpips), (ARCFACE, _arcface), (dlib_face.NAMES, _dlib))
PAIRED_NETWORK_METRICS = tuple(m for names, _ in FAMILIES for m in names)


def build_scorers(wanted: list[str], device: str = "cpu") -> tuple[list[PairScorer], dict[str, str]]:
    """The scorers for the ``wanted`` metrics, and ``{metric: reason}`` for those that cannot run here."""
    scorers, skipped = [], {}
    for names, build in FAMILIES:
        chosen = [m for m in names if m in wanted]
        if not chosen:
            continue
        try:
            scorers.append(build(device))
        except MetricUnavailable as exc:
            skipped.update({m: str(exc) for m in chosen})
    return scorers, skipped
