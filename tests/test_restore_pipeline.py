"""The restore pipeline on the real photos with a stand-in face network (the colour negative, so a
restored face is unmistakable): faces pasted where the people are, the input's mode, size and bit
depth kept, bad files reported one by one, resumable, batched across photos."""
import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from mpcnet.restoration.align import FFHQ_TEMPLATE_512, align_face
from mpcnet.restoration.detectors import detect_faces
from mpcnet.restoration.options import RestoreOptions
from mpcnet.restoration.paste import ellipse_mask, parse_mask
from mpcnet.restoration.restorer import FaceRestorer
from mpcnet.restoration.results import STAGES
from mpcnet.restoration.scheduler import RestorePipeline
from mpcnet.utils.image_io import read_image
from tests.conftest import DATA, Negative

WHOLE = DATA / "codeformer-inputs" / "whole_imgs"


def pipeline(detector, batch_size=4, **options):
    return RestorePipeline(FaceRestorer(Negative(), size=64, batch_size=batch_size), detector,
                           RestoreOptions(**options))


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_alignment_puts_the_landmarks_on_the_ffhq_template(yunet):
    bgr = cv2.imread(str(WHOLE / "03.jpg"))
    face = detect_faces(yunet, bgr)[0]
    crop, _ = align_face(bgr.astype(np.float32) / 255, face.landmarks)
    again = detect_faces(yunet, np.rint(crop * 255).astype(np.uint8))
    assert len(again) == 1
    assert np.abs(again[0].landmarks - FFHQ_TEMPLATE_512).max() < 20  # px of 512


def test_faces_pasted_where_people_are_and_rgba_kept(yunet, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    rgba = cv2.imread(str(WHOLE / "02.png"), cv2.IMREAD_UNCHANGED)
    rgba = cv2.resize(rgba, (602, 322), interpolation=cv2.INTER_AREA)
    rgba[:20, :20, 3] = 0  # a transparent corner that must stay transparent
    cv2.imwrite(str(src / "group.png"), rgba)
    summary = pipeline(yunet, upscale=2).run([src / "group.png"], src, tmp_path / "out")
    result = summary.results[0]
    assert (result.status, result.faces) == ("restored", 4)
    out = cv2.imread(result.output, cv2.IMREAD_UNCHANGED)
    assert out.shape == (644, 1204, 4) and out.dtype == np.uint8
    assert (out[:36, :36, 3] == 0).all() and out[100:, 100:, 3].min() > 0
    background = cv2.resize(rgba[..., :3], (1204, 644), interpolation=cv2.INTER_LANCZOS4).astype(int)
    diff = np.abs(out[..., :3].astype(int) - background).mean(axis=2)
    for face in detect_faces(yunet, rgba[..., :3]):
        cx, cy = (face.landmarks[2] * 2).astype(int)  # the nose, in output pixels
        assert diff[cy - 4:cy + 4, cx - 4:cx + 4].mean() > 40  # the (negated) face is there
    assert diff[-60:, :].max() <= 1 and diff[:, :40].max() <= 1  # far from faces: untouched
    assert set(summary.timer.seconds) == set(STAGES)
    assert all(summary.timer.seconds[s] > 0 for s in ("read", "detect", "align", "network", "background", "paste", "write"))


def test_aligned_gray_faces_stay_gray(tmp_path):
    gray = [p for p in sorted((DATA / "codeformer-inputs" / "gray_faces").glob("*.png")) if read_image(p).gray][:3]
    assert len(gray) == 3
    summary = pipeline(None, aligned=True, upscale=1).run(gray, gray[0].parent, tmp_path)
    for src, result in zip(gray, summary.results):
        assert result.status == "restored"
        before = cv2.imread(str(src), cv2.IMREAD_UNCHANGED)
        out = cv2.imread(result.output, cv2.IMREAD_UNCHANGED)
        assert out.shape == before.shape and out.dtype == np.uint8
        assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])
        assert np.abs(out[..., :3].astype(int) - before[..., :3]).mean() > 40


def test_single_channel_and_16_bit_inputs_keep_their_mode(yunet, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    bgr = cv2.resize(cv2.imread(str(WHOLE / "06.png")), (363, 419), interpolation=cv2.INTER_AREA)
    Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)).save(src / "gray.png")
    cv2.imwrite(str(src / "deep.png"), bgr.astype(np.uint16) * 257)
    cv2.imwrite(str(src / "deep.tif"), bgr.astype(np.uint16) * 257)
    files = sorted(src.iterdir())
    summary = pipeline(yunet, upscale=2).run(files, src, tmp_path / "out")
    got = {r.source.rsplit("/", 1)[1]: r for r in summary.results}
    assert all(r.status == "restored" and r.faces == 2 for r in got.values())
    gray = cv2.imread(got["gray.png"].output, cv2.IMREAD_UNCHANGED)
    assert gray.shape == (838, 726) and gray.dtype == np.uint8
    for name in ("deep.png", "deep.tif"):
        deep = cv2.imread(got[name].output, cv2.IMREAD_UNCHANGED)
        assert deep.shape == (838, 726, 3) and deep.dtype == np.uint16
        assert len(np.unique(deep % 257)) > 1  # real 16-bit values, not 8-bit ones scaled


def test_16_bit_to_jpeg_says_it_was_converted(yunet, tmp_path):
    bgr = cv2.imread(str(WHOLE / "03.jpg"))
    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "deep.png"), bgr.astype(np.uint16) * 257)
    result = pipeline(yunet, ext="jpg").run([src / "deep.png"], src, tmp_path / "out").results[0]
    assert result.output.endswith(".jpg") and "16-bit input written as 8-bit" in result.message


def test_bad_files_are_reported_and_the_batch_goes_on(yunet, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "empty.jpg").write_bytes(b"")
    (src / "notes.jpg").write_text("shopping list: eggs, milk\n")
    (src / "truncated.jpg").write_bytes((WHOLE / "00.jpg").read_bytes()[:2000])
    cv2.imwrite(str(src / "tiny.png"), np.zeros((1, 1, 3), np.uint8))
    from skimage import data
    cv2.imwrite(str(src / "landscape.png"), cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR)[::2, ::2])
    (src / "people.jpg").write_bytes((WHOLE / "01.jpg").read_bytes())
    summary = pipeline(yunet).run(sorted(src.iterdir()), src, tmp_path / "out")
    got = {r.source.rsplit("/", 1)[1]: r for r in summary.results}
    assert got["empty.jpg"].status == "failed" and "empty" in got["empty.jpg"].message
    assert got["notes.jpg"].status == "failed" and "not an image" in got["notes.jpg"].message
    assert got["truncated.jpg"].status == "failed" and "corrupt" in got["truncated.jpg"].message
    assert got["tiny.png"].status == "failed" and "too small" in got["tiny.png"].message
    assert got["landscape.png"].status == "no-face" and (tmp_path / "out/restored_imgs/landscape.png").is_file()
    assert (got["people.jpg"].status, got["people.jpg"].faces) == ("restored", 4)
    assert not summary.ok and summary.count("failed") == 4
    assert all("\n" not in r.message for r in summary.results)

    faces_only = pipeline(yunet, faces_only=True).run([src / "landscape.png"], src, tmp_path / "out2")
    assert faces_only.results[0].status == "no-face" and faces_only.results[0].output is None
    assert not (tmp_path / "out2").exists()


def test_over_max_pixels_is_refused(yunet, tmp_path):
    result = pipeline(yunet, max_pixels=100_000).run([WHOLE / "02.png"], WHOLE, tmp_path).results[0]
    assert result.status == "failed" and "max_pixels" in result.message


def test_skip_existing_resumes_and_nothing_is_overwritten_unasked(yunet, tmp_path):
    files = [WHOLE / "00.jpg", WHOLE / "04.jpg"]
    out = tmp_path / "out"
    first = pipeline(yunet).run(files[:1], WHOLE, out)
    done = out / "restored_imgs" / "00.jpg"
    before = (sha(done), done.stat().st_mtime_ns)
    again = pipeline(yunet, skip_existing=True).run(files, WHOLE, out)
    assert [r.status for r in again.results] == ["skipped", "restored"]
    assert again.timer.seconds["detect"] > 0 and first.results[0].faces == 4
    third = pipeline(yunet, skip_existing=True).run(files, WHOLE, out)
    assert [r.status for r in third.results] == ["skipped", "skipped"] and third.timer.seconds["read"] == 0
    refused = pipeline(yunet).run(files[:1], WHOLE, out)
    assert refused.results[0].status == "failed" and "--overwrite" in refused.results[0].message
    assert (sha(done), done.stat().st_mtime_ns) == before
    replaced = pipeline(yunet, overwrite=True).run(files[:1], WHOLE, out)
    assert replaced.results[0].status == "restored" and done.stat().st_mtime_ns != before[1]


def test_batching_across_photos_gives_the_same_pixels(yunet, tmp_path):
    files = [WHOLE / n for n in ("00.jpg", "03.jpg", "01.jpg", "05.jpg")]
    one = pipeline(yunet, batch_size=1).run(files, WHOLE, tmp_path / "one")
    many = pipeline(yunet, batch_size=5).run(files, WHOLE, tmp_path / "many")
    assert [r.faces for r in one.results] == [r.faces for r in many.results] == [4, 1, 4, 1]
    for a, b in zip(one.results, many.results):
        assert sha(Path(a.output)) == sha(Path(b.output))


def test_save_faces_and_comparison(yunet, tmp_path):
    out = tmp_path / "out"
    result = pipeline(yunet, upscale=1, save_faces=True, save_comparison=True).run(
        [WHOLE / "01.jpg"], WHOLE, out).results[0]
    assert result.faces == 4
    for folder in ("cropped_faces", "restored_faces"):
        faces = sorted((out / folder).glob("01_*.png"))
        assert len(faces) == 4 and cv2.imread(str(faces[0])).shape == (512, 512, 3)
    cmp = cv2.imread(str(out / "cmp" / "01.jpg"))
    assert cmp.shape == (189, 496, 3)


def test_only_center_face(yunet, tmp_path):
    result = pipeline(yunet, only_center_face=True).run([WHOLE / "00.jpg"], WHOLE, tmp_path).results[0]
    assert (result.status, result.faces) == ("restored", 1)


def test_exif_orientation_and_webp(yunet, tmp_path):
    upright = Image.open(WHOLE / "03.jpg")
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    src = tmp_path / "in"
    src.mkdir()
    upright.rotate(90, expand=True).save(src / "phone.jpg", exif=exif)  # stored on its side
    upright.save(src / "web.webp", lossless=True)
    summary = pipeline(yunet, upscale=1).run([src / "phone.jpg", src / "web.webp"], src, tmp_path / "out")
    assert [(r.status, r.faces) for r in summary.results] == [("restored", 1), ("restored", 1)]
    assert cv2.imread(summary.results[0].output).shape == (225, 400, 3)  # displayed orientation
    assert summary.results[1].output.endswith(".webp")


def test_two_inputs_for_one_output_name_are_not_mixed_up(yunet, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.jpg").write_bytes((WHOLE / "04.jpg").read_bytes())
    cv2.imwrite(str(src / "a.png"), cv2.imread(str(WHOLE / "05.jpg")))
    summary = pipeline(yunet, ext="png").run([src / "a.jpg", src / "a.png"], src, tmp_path / "out")
    assert summary.results[0].status == "restored"
    assert summary.results[1].status == "failed" and "same output name" in summary.results[1].message


def test_parse_mask_keeps_hair_neck_and_background_out():
    labels = np.zeros((512, 512), np.int64)
    labels[100:450, 120:400] = 1  # skin
    labels[40:100, 100:420] = 17  # hair
    labels[250:270, 180:230] = 4  # an eye
    mask = parse_mask(labels)
    assert mask[260, 200] > 0.99 and mask[300, 256] > 0.99
    assert mask[45, 256] < 0.05 and mask[480, 256] < 0.05 and mask[256, 30] < 0.05
    assert mask[0].max() == mask[:, -1].max() == 0
    ellipse = ellipse_mask()
    assert ellipse[285, 256] > 0.99 and ellipse[5, 5] < 1e-3 and ellipse[300, 470] < 0.05


def square_logits(x, square=(200, 440)):
    """19-class logits: class 1 ('skin' in both facexlib's and MPCNet's order) in the square
    [200, 440)² of a 512 crop (scaled to the input's size), background elsewhere."""
    size = x.shape[-1]
    lo, hi = square[0] * size // 512, square[1] * size // 512
    logits = torch.zeros(x.shape[0], 19, size, size)
    logits[:, 0] = 1
    logits[:, 1, lo:hi, lo:hi] = 2
    return logits


class SquareParser(torch.nn.Module):
    """Stand-in facexlib ParseNet (returns (logits, image))."""

    def forward(self, x):
        return square_logits(x), x


class NegativeWithParsingPrior(Negative):
    """Stand-in MPCNet with a parsing prior: ``forward(x, return_parse=True)`` gives its parsing too."""

    def __init__(self, square=(200, 440)):
        super().__init__()
        self.parsenet = torch.nn.Identity()  # what FaceRestorer looks for
        self.square = square

    def forward(self, x, return_parse=False):
        return (-x, square_logits(x, self.square)) if return_parse else -x


class NeverRun(torch.nn.Module):
    def forward(self, x):
        raise AssertionError("the separate ParseNet ran although the network parses")


@pytest.mark.parametrize("mask", ["ellipse", "parsenet", "network's parsing prior", "no face parsed"])
def test_parsing_mask_decides_what_is_pasted(yunet, tmp_path, mask):
    bgr = cv2.imread(str(WHOLE / "03.jpg"))
    face = detect_faces(yunet, bgr)[0]
    _, affine = align_face(bgr.astype(np.float32) / 255, face.landmarks)
    to_photo = cv2.invertAffineTransform(affine)
    inside = np.rint(to_photo @ [320, 320, 1]).astype(int)  # in the parser's square
    forehead = np.rint(to_photo @ [256, 130, 1]).astype(int)  # in the ellipse, outside the square
    net, parser = {"ellipse": (Negative(), None), "parsenet": (Negative(), SquareParser()),
                   "network's parsing prior": (NegativeWithParsingPrior(), NeverRun()),
                   "no face parsed": (NegativeWithParsingPrior(square=(0, 0)), NeverRun())}[mask]
    p = RestorePipeline(FaceRestorer(net, size=64), yunet, RestoreOptions(upscale=1), parser)
    out = cv2.imread(p.run([WHOLE / "03.jpg"], WHOLE, tmp_path).results[0].output).astype(int)

    def changed(xy):
        return np.abs(out[xy[1], xy[0]] - bgr[xy[1], xy[0]]).mean()
    assert changed(inside) > 30
    assert changed(forehead) > 30 if mask in ("ellipse", "no face parsed") else changed(forehead) < 8


def test_the_pipeline_never_writes_onto_an_input(yunet, tmp_path):
    """Even with --overwrite, an output that would be the input file itself fails alone."""
    src = tmp_path / "restored_imgs" / "a.jpg"
    src.parent.mkdir()
    src.write_bytes((WHOLE / "04.jpg").read_bytes())
    (tmp_path / "b.jpg").write_bytes((WHOLE / "05.jpg").read_bytes())
    summary = pipeline(yunet, overwrite=True).run([src, tmp_path / "b.jpg"], tmp_path, tmp_path / "out")
    assert [r.status for r in summary.results] == ["restored", "restored"]  # outputs beside inputs are fine
    summary = pipeline(yunet, overwrite=True).run([src], src.parent, tmp_path)
    assert summary.results[0].status == "failed" and "input file itself" in summary.results[0].message
    assert src.read_bytes() == (WHOLE / "04.jpg").read_bytes()


@pytest.mark.parametrize("parse", [True, False])
def test_mpcnet_hands_its_parsing_to_the_paste_step(aligned_faces, parse):
    """One forward pass gives the restored face and, with a parsing prior, the prior's class map."""
    from mpcnet.archs.mpcnet_arch import MPCNet

    torch.manual_seed(0)
    net = MPCNet(out_size=64, num_style_feat=32, narrow=0.0625, parse_base_ch=16, parse_max_ch=32,
                 parse_res_depth=2, use_parse_prior=parse, use_sft=parse).eval()
    crops = [cv2.imread(str(p)).astype(np.float32) / 255 for p in aligned_faces[:3]]
    restorer = FaceRestorer(net, size=64, batch_size=2)
    results = restorer(crops)
    assert restorer.parses == parse and len(results) == 3
    small = cv2.resize(crops[2], (64, 64), interpolation=cv2.INTER_AREA)
    with torch.inference_mode():
        image, logits = net(torch.from_numpy(small[..., ::-1].copy()).permute(2, 0, 1)[None] * 2 - 1,
                            return_parse=True)
    face, labels = results[2]
    expected = ((image[0].clamp(-1, 1) + 1) / 2).permute(1, 2, 0).numpy()[..., ::-1]
    assert face.shape == (512, 512, 3)
    assert np.abs(cv2.resize(face, (64, 64), interpolation=cv2.INTER_AREA) - expected).mean() < 0.02
    if parse:
        assert labels.shape == (512, 512) and labels.dtype == np.uint8
        assert (labels[4::8, 4::8] == logits[0].argmax(dim=0).numpy()).all()
    else:
        assert labels is None


def test_a_crop_larger_than_the_network_keeps_its_own_detail(hq_faces):
    """A 512 crop through a 64 px network: only the network's change is upsampled; an identity
    network returns the crop itself (not a blurry upscale), a constant change is added as is."""
    from mpcnet.archs.mpcnet_arch import MPCNet
    from tests.test_archs import SMALL

    crops = [cv2.resize(cv2.imread(str(p)), (512, 512), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
             for p in hq_faces[:2]]
    identity = MPCNet(out_size=64, residual=True, **SMALL).eval()
    (face0, _), (face1, _) = FaceRestorer(identity, size=64)(crops)
    assert np.abs(face0 - crops[0]).max() < 1e-5 and np.abs(face1 - crops[1]).max() < 1e-5
    with torch.no_grad():
        identity.to_rgb.bias.fill_(0.2)  # +0.2 in [-1, 1] is +0.1 in [0, 1]
    (face0, _), _ = FaceRestorer(identity, size=64)(crops)
    error = np.abs(face0 - (crops[0] + 0.1).clip(0, 1))
    assert np.median(error) < 1e-5 and error.mean() < 2e-3  # (but where the network's output clips at 1)
    lanczos = cv2.resize(cv2.resize(crops[0], (64, 64), interpolation=cv2.INTER_AREA), (512, 512),
                         interpolation=cv2.INTER_LANCZOS4)
    assert np.abs(lanczos - crops[0]).mean() > 0.02  # what the old resize-back would have lost
