"""Phone-size photos (issue 19): faces detected on reduced copies and mapped back, the same faces
as full-resolution detection where that works, one face per close-up, outputs as the float32
pipeline composed them, at most two decoded photos alive whatever the batch size, and reading and
writing that overlap the network without changing a byte."""
from __future__ import annotations

import pickle
import shutil
import threading
import weakref
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import DATA, Negative, shared_file

from mpcnet.restoration import stages
from mpcnet.restoration.align import BORDER_GRAY, face_affine, inverse_affine
from mpcnet.restoration.detectors import make_detector
from mpcnet.restoration.multiscale import BEST_BOX, detect_multiscale
from mpcnet.restoration.options import RestoreOptions
from mpcnet.restoration.paste import ellipse_mask
from mpcnet.restoration.restorer import FaceRestorer
from mpcnet.restoration.scheduler import RestorePipeline
from mpcnet.utils.image_io import read_image

WHOLE = DATA / "codeformer-inputs" / "whole_imgs"
# The 12-14 MP photos of ../shared/data: one person each, photographed close up
PHONE = ("faces-wild/deepface-tests/tests__unit__dataset__img49.jpg", "faces-wild/fairface-test/test__race_Latino.jpg",
         "faces-wild/deepface-tests/tests__unit__dataset__img40.jpg")


@pytest.fixture(scope="module")
def retinaface():
    shared_file("weights", "retinaface_mobilenet0.25_Final.pth")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MPCNET_WEIGHTS_DIR", str(DATA.parent / "weights"))
        return make_detector("retinaface")


def group_photo() -> np.ndarray:
    """Three real group photos side by side, ×3 (3417×930): 9 faces of 94-135 px, which RetinaFace
    finds at full resolution, in a photo larger than the largest detection copy."""
    photos = [cv2.imread(str(WHOLE / name)) for name in ("00.jpg", "03.jpg", "01.jpg")]
    photos = [cv2.resize(p, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC) for p in photos]
    height = max(p.shape[0] for p in photos)
    return np.hstack([cv2.copyMakeBorder(p, 0, height - p.shape[0], 0, 0, cv2.BORDER_CONSTANT) for p in photos])


def test_reduced_copies_find_the_faces_full_resolution_finds(retinaface):
    photo = group_photo()
    full = [f for f in retinaface.detect(photo) if f.score >= 0.99 and f.box[2] - f.box[0] <= BEST_BOX]
    found = detect_multiscale(retinaface, photo)
    assert len(full) == 8  # (03.jpg's face is 343 px wide: beyond the detector's anchors at full size)
    for face in full:
        width = face.box[2] - face.box[0]
        distance = [np.linalg.norm(f.landmarks - face.landmarks, axis=1).mean() for f in found]
        match = found[int(np.argmin(distance))]
        assert min(distance) <= 0.05 * width  # 3-5 px for these 94-135 px faces
        assert np.abs(match.box - face.box).max() <= 0.1 * width
    # what full resolution cannot match is one face each, wider than the detector's range there
    rest = [f for f in found if min(np.linalg.norm(f.landmarks - g.landmarks, axis=1).mean() for g in full) > 20]
    assert len(found) == len(full) + len(rest) and all(f.box[2] - f.box[0] > BEST_BOX for f in rest)


@pytest.mark.parametrize("name", PHONE)
def test_a_close_up_on_a_phone_photo_is_one_face_where_yunet_finds_it(retinaface, yunet, name):
    """Full-resolution detection splits these faces into eyes, noses and mouths; on reduced copies
    the face is found whole, where YuNet (another model) finds it on a 640 px copy."""
    bgr = cv2.imread(str(shared_file("data", *name.split("/"))))
    faces = detect_multiscale(retinaface, bgr)
    scale = 640 / max(bgr.shape[:2])
    reference = max(yunet.detect(cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)),
                    key=lambda f: f.box[2] - f.box[0])
    main = max(faces, key=lambda f: f.box[2] - f.box[0])
    eyes = np.linalg.norm(reference.landmarks[0] - reference.landmarks[1]) / scale
    assert np.linalg.norm(main.landmarks - reference.landmarks / scale, axis=1).mean() < 0.15 * eyes
    others = [f for f in faces if f is not main]  # e.g. a photographer behind the man of img40
    assert all(f.box[0] > main.box[2] or f.box[2] < main.box[0] or f.box[1] > main.box[3] or f.box[3] < main.box[1]
               for f in others)  # no part of the face is taken for a face of its own


def reference_output(photo: str, retinaface, upscale: int) -> np.ndarray:
    """The whole photo composed in float32, as the pipeline did before issue 19: float copy,
    float background, each face warped over the whole canvas, one rounding at the end."""
    image = read_image(photo)
    pixels = image.float_bgr()
    faces = detect_multiscale(retinaface, image.bgr)
    affines = [face_affine(f.landmarks) for f in faces]
    crops = [cv2.warpAffine(pixels, a, (512, 512), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                            borderValue=BORDER_GRAY) for a in affines]
    h, w = pixels.shape[:2]
    size = (w * upscale, h * upscale)
    canvas = pixels if upscale == 1 else cv2.resize(pixels, size, interpolation=cv2.INTER_LANCZOS4).clip(0, 1)
    mask = ellipse_mask()
    for (face, _), affine in zip(FaceRestorer(Negative(), size=64)(crops), affines):
        inverse = inverse_affine(affine, upscale)
        warped = cv2.warpAffine(face, inverse, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        alpha = cv2.warpAffine(mask, inverse, size, flags=cv2.INTER_LINEAR, borderValue=0)[..., None]
        canvas += alpha * (warped - canvas)
    return np.rint(canvas.clip(0, 1) * 255).astype(np.uint8)


@pytest.mark.parametrize("name, upscale", [(PHONE[0], 1), ("codeformer-inputs/whole_imgs/00.jpg", 2)])
def test_output_is_what_the_float_pipeline_made(retinaface, tmp_path, name, upscale):
    """8-bit photos stay 8-bit now (float only around each face, pasted in strips): the output
    differs from the whole-photo float32 composition by rounding alone; same faces, same places."""
    photo = shared_file("data", *name.split("/"))
    pipe = RestorePipeline(FaceRestorer(Negative(), size=64), retinaface, RestoreOptions(upscale=upscale, ext="png"))
    result = pipe.run([photo], photo.parent, tmp_path).results[0]
    assert result.status == "restored"
    out = cv2.imread(result.output).astype(int)
    diff = np.abs(out - reference_output(str(photo), retinaface, upscale))
    # the aligned crop is now rounded to 8 bits (≤ 1 level), which the stand-in network's change
    # (−2× the input) triples in a few pixels
    assert diff.mean() < 0.05 and (diff > 1).mean() < 1e-4 and diff.max() <= 6


def copy_photos(folder, names=("00.jpg", "01.jpg", "03.jpg", "04.jpg", "05.jpg")) -> list:
    folder.mkdir()
    for name in names:
        shutil.copy(WHOLE / name, folder / name)
    return sorted(folder.iterdir())


def count_reads(monkeypatch, started=None) -> tuple[list, list]:
    """``read_image`` of the stages counted: a weak reference to each decoded photo, how many were
    alive after each read; ``started`` is set when the second read begins."""
    refs, alive = [], []
    read = stages.read_image

    def counted(*args, **kwargs):
        if started is not None and len(refs) >= 1:
            started.set()
        image = read(*args, **kwargs)
        refs.append(weakref.ref(image))
        alive.append(sum(ref() is not None for ref in refs))
        return image

    monkeypatch.setattr(stages, "read_image", counted)
    return refs, alive


def test_waiting_photos_are_let_go_and_read_again(yunet, tmp_path, monkeypatch):
    """Faces of several photos share a batch, yet at most two decoded photos are alive at a time
    (the one being read, the one being written); re-read photos give the same bytes as photos
    written at once. With a fixed batch larger than the folder's faces every photo waits, so each is
    read twice; with batch 1 none waits; the default (a partial batch when the network would idle)
    lies between."""
    files = copy_photos(tmp_path / "in")
    refs, alive = count_reads(monkeypatch)
    outputs = {}
    for batch, fixed, reads in ((16, True, (2 * len(files),)), (1, False, (len(files),)),
                                (16, False, range(len(files), 2 * len(files) + 1))):
        refs.clear()
        alive.clear()
        restorer = FaceRestorer(Negative(), size=64, batch_size=batch)
        restorer.fixed_batch = fixed
        summary = RestorePipeline(restorer, yunet, RestoreOptions(upscale=1)).run(files, tmp_path / "in",
                                                                                  tmp_path / f"b{batch}{fixed}")
        assert summary.ok and summary.faces >= 8, summary.results[0].message
        assert len(alive) in reads and max(alive) <= 2
        outputs[batch, fixed] = [open(r.output, "rb").read() for r in summary.results]
    assert outputs[16, True] == outputs[1, False] == outputs[16, False]


def test_the_next_photo_is_read_while_the_network_runs(yunet, tmp_path, monkeypatch):
    """Reading and detecting overlap the network: the network's first call waits until the reader
    has begun the second photo (in series it would wait in vain)."""
    files = copy_photos(tmp_path / "in", ("00.jpg", "01.jpg"))
    started, waited = threading.Event(), []
    count_reads(monkeypatch, started)

    class Waiting(Negative):
        def forward(self, x):
            if not waited:
                waited.append(started.wait(timeout=60))
            return super().forward(x)

    summary = RestorePipeline(FaceRestorer(Waiting(), size=64, batch_size=1), yunet,
                              RestoreOptions(upscale=1)).run(files, tmp_path / "in", tmp_path / "out")
    assert summary.ok and waited == [True]


def test_overlap_gives_the_outputs_of_photos_restored_one_by_one(yunet, tmp_path):
    """A folder restored with reading, network and writing overlapped (a bad file in the middle)
    gives byte for byte the outputs of each photo restored alone; the bad file fails alone."""
    files = copy_photos(tmp_path / "in")
    bad = tmp_path / "in" / "02_truncated.jpg"
    bad.write_bytes(files[1].read_bytes()[:5000])
    pipe = RestorePipeline(FaceRestorer(Negative(), size=64, batch_size=3), yunet, RestoreOptions(upscale=2))
    summary = pipe.run(sorted(files + [bad]), tmp_path / "in", tmp_path / "all")
    by_name = {Path(r.source).name: r for r in summary.results}
    assert [Path(r.source).name for r in summary.results] == sorted(by_name)
    assert by_name[bad.name].status == "failed" and "truncated" in by_name[bad.name].message
    assert summary.count("restored") == len(files) and summary.faces >= 8
    assert pickle.loads(pickle.dumps(summary)).to_dict() == summary.to_dict()  # as processes gather it
    for photo in files:
        alone = pipe.run([photo], tmp_path / "in", tmp_path / photo.stem).results[0]
        assert alone.faces == by_name[photo.name].faces
        assert open(alone.output, "rb").read() == open(by_name[photo.name].output, "rb").read()
