"""Reading and writing the user's files: real photos, broken files, safety of outputs."""
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from mpcnet.utils.image_io import ImageReadError, as_8bit, list_images, read_image, write_image
from mpcnet.utils.safe_output import UnsafeOutputError, check_not_input, check_output_location
from tests.conftest import DATA


def test_reads_real_rgba_photo_keeping_alpha():
    img = read_image(DATA / "codeformer-inputs" / "whole_imgs" / "02.png")
    assert img.bgr.shape == (645, 1204, 3) and img.alpha.shape == (645, 1204)
    assert img.bit_depth == 8 and not img.gray


def test_gray_face_stored_as_rgb_is_detected_gray():
    img = read_image(DATA / "codeformer-inputs" / "gray_faces" / "Hepburn01.png")
    assert img.gray and img.bgr.shape == (512, 512, 3)


def test_16bit_gray_png(tmp_path):
    arr = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "g16.png"), arr)
    img = read_image(tmp_path / "g16.png")
    assert img.bit_depth == 16 and img.gray and int(img.bgr.max()) == int(arr.max())


def test_16_bit_to_8_bit_is_the_nearest_level(tmp_path):
    """A real HQ face in 16 bits (the 1024² FFHQ face area-averaged to 256², so the samples fall between
    the 8-bit levels): every 8-bit sample is the nearest level (within half of a 257 step, no ties as
    257 is odd), where truncation (>>8, //257) would be below it; 8-bit data scaled ×257 comes back
    exactly; an 8-bit format written from 16 bits holds the same values."""
    face = cv2.imread(str(DATA / "gpen-examples" / "ffhq-10" / "00000.png"))
    deep = np.rint(cv2.resize(face.astype(np.float32) * 257, (256, 256), interpolation=cv2.INTER_AREA))
    cv2.imwrite(str(tmp_path / "deep.png"), deep.astype(np.uint16))
    image = read_image(tmp_path / "deep.png")
    assert image.bit_depth == 16 and (image.bgr % 257 != 0).mean() > 0.5
    out = as_8bit(image.bgr)
    assert out.dtype == np.uint8 and out.shape == image.bgr.shape
    assert (np.abs(out.astype(np.int64) * 257 - image.bgr) <= 128).all()
    assert (out > image.bgr >> 8).any() and (out > image.bgr // 257).any()
    assert np.array_equal(as_8bit(face.astype(np.uint16) * 257), face) and as_8bit(face) is face
    write_image(tmp_path / "deep.bmp", image.bgr)
    assert np.array_equal(cv2.imread(str(tmp_path / "deep.bmp"), cv2.IMREAD_UNCHANGED), out)


def test_exif_orientation_is_applied(tmp_path, aligned_faces):
    src = Image.open(aligned_faces[0]).convert("RGB").resize((64, 32))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    src.save(tmp_path / "rot.jpg", exif=exif)
    assert read_image(tmp_path / "rot.jpg").bgr.shape[:2] == (64, 32)


CAMERA_PHOTO = DATA / "faces-wild" / "deepface-tests" / "tests__unit__dataset__img1.jpg"  # ICC, Canon EXIF, 72 dpi


@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_profile_exif_and_resolution_are_written_into_outputs(tmp_path, ext):
    """What `restore` keeps of a real photo: its ICC profile byte for byte, its EXIF (orientation 1,
    since the pixels are turned upright on reading) and its resolution, doubled with the size."""
    from mpcnet.utils.image_io import encode_image

    image = read_image(CAMERA_PHOTO)
    with Image.open(CAMERA_PHOTO) as original:
        icc, tags = original.info["icc_profile"], dict(original.getexif())
    small = cv2.resize(image.bgr, (96, 64))
    out, plain = tmp_path / f"out{ext}", tmp_path / f"plain{ext}"
    out.write_bytes(encode_image(out, small, metadata=image.metadata.scaled(2)))
    plain.write_bytes(encode_image(plain, small))
    assert np.array_equal(cv2.imread(str(out)), cv2.imread(str(plain)))  # the same pixels, only more said of them
    with Image.open(out) as written:
        written.load()
        exif = written.getexif()
        assert written.info["icc_profile"] == icc and written.info["dpi"] == pytest.approx((144, 144), abs=0.02)
        assert exif[0x0112] == 1 and exif[0x010F] == tags[0x010F] == "Canon" and exif[0x011A] == 144
        assert exif.get_ifd(0x8769)[0x9003] == "2019:07:20 17:45:22"  # DateTimeOriginal, in the Exif sub-IFD
    with Image.open(plain) as written:
        assert "icc_profile" not in written.info and not len(written.getexif())
    gray = tmp_path / f"gray{ext}"  # an RGB profile does not describe one channel: left out, the rest kept
    gray.write_bytes(encode_image(gray, cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), metadata=image.metadata))
    with Image.open(gray) as written:
        assert "icc_profile" not in written.info and written.getexif()[0x010F] == "Canon"


def test_rotated_photo_keeps_its_exif_upright(tmp_path, aligned_faces):
    src = Image.open(aligned_faces[0]).convert("RGB").resize((64, 32))
    exif = Image.Exif()
    exif[0x0112], exif[0x0110] = 6, "a camera"
    src.save(tmp_path / "rot.jpg", exif=exif)
    metadata = read_image(tmp_path / "rot.jpg").metadata
    table = Image.Exif()
    table.load(metadata.exif)
    assert table[0x0112] == 1 and table[0x0110] == "a camera"


@pytest.mark.parametrize("content,reason", [(b"", "empty"), (b"hello, not an image", "not an image"),
                                            (None, "corrupt")])
def test_bad_files_give_one_line_reasons(tmp_path, aligned_faces, content, reason):
    bad = tmp_path / "bad.png"
    bad.write_bytes(content if content is not None else aligned_faces[0].read_bytes()[:300])
    with pytest.raises(ImageReadError, match=reason):
        read_image(bad)


def test_tiny_and_huge_are_refused(tmp_path):
    cv2.imwrite(str(tmp_path / "one.png"), np.zeros((1, 1, 3), np.uint8))
    with pytest.raises(ImageReadError, match="too small"):
        read_image(tmp_path / "one.png")
    cv2.imwrite(str(tmp_path / "big.png"), np.zeros((300, 300, 3), np.uint8))
    with pytest.raises(ImageReadError, match="max_pixels"):
        read_image(tmp_path / "big.png", max_pixels=300 * 299)


def test_list_images_folder_file_and_glob():
    root, files = list_images(DATA / "codeformer-inputs")
    assert root == DATA / "codeformer-inputs" and len(files) == 40 and files == sorted(files)
    assert list_images(files[0])[1] == [files[0]]
    assert len(list_images(str(DATA / "codeformer-inputs" / "whole_imgs" / "*.png"))[1]) == 2
    with pytest.raises(FileNotFoundError, match="no such file, folder or glob match: .*nope"):
        list_images(DATA / "nope")


def test_list_images_recursive_glob_and_dangling_links(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for rel in ("top.png", "a/b/deep.jpg", "a/notes.txt"):
        (tmp_path / rel).write_bytes(b"x")
    (tmp_path / "a" / "gone.png").symlink_to(tmp_path / "deleted.png")  # listed, so it gets reported
    (tmp_path / "a" / "dir.png").mkdir()  # a folder named like an image is not a file
    assert list_images(tmp_path)[1] == [tmp_path / "a" / "b" / "deep.jpg", tmp_path / "a" / "gone.png",
                                        tmp_path / "top.png"]
    root, files = list_images(str(tmp_path / "**" / "*.jpg"))
    assert (root, files) == (tmp_path / "a" / "b", [tmp_path / "a" / "b" / "deep.jpg"])


def test_list_images_leaves_out_hidden_files_and_takes_several_sources(tmp_path, monkeypatch):
    for rel in ("x/a.jpg", "x/._a.jpg", "x/.thumbs/t.jpg", "y/b.png", "y/sub/c.png"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    assert list_images(tmp_path / "x")[1] == [tmp_path / "x" / "a.jpg"]
    (tmp_path / "x" / "linked").symlink_to(tmp_path / "y")  # a linked folder is read, a link back up once
    (tmp_path / "y" / "up").symlink_to(tmp_path / "x")
    assert list_images(tmp_path / "x")[1] == [tmp_path / "x" / "a.jpg", tmp_path / "x" / "linked" / "b.png",
                                              tmp_path / "x" / "linked" / "sub" / "c.png"]
    for link in (tmp_path / "x" / "linked", tmp_path / "y" / "up"):
        link.unlink()
    monkeypatch.chdir(tmp_path / "x")
    # as `restore a.jpg ../y ../x/a.jpg` gets them from the shell: each file once, under the folder they share
    root, files = list_images(["a.jpg", "../y", "../x/a.jpg"])
    assert root == tmp_path
    assert files == [tmp_path / "x" / "a.jpg", tmp_path / "y" / "b.png", tmp_path / "y" / "sub" / "c.png"]
    assert list_images(["a.jpg"]) == (Path("."), [Path("a.jpg")])  # one source: as before
    with pytest.raises(FileNotFoundError, match="nope"):
        list_images(["a.jpg", "nope.jpg"])


def test_output_inside_input_is_refused(tmp_path):
    with pytest.raises(UnsafeOutputError, match="is inside the input folder .*read the outputs back"):
        check_output_location(tmp_path, tmp_path / "out")
    with pytest.raises(UnsafeOutputError, match="inside the input folder"):
        check_output_location(tmp_path, tmp_path)
    check_output_location(tmp_path / "in", tmp_path / "out")
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(UnsafeOutputError, match="exists and is a file, not a folder"):
        check_output_location(tmp_path / "in", tmp_path / "file")


def test_output_folder_that_cannot_be_made_is_refused_before_any_work(tmp_path, monkeypatch):
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(UnsafeOutputError, match=r"cannot be made: .*file is a file, not a folder"):
        check_output_location(tmp_path / "in", tmp_path / "file" / "out" / "deeper")
    # root may write anywhere, so an unwritable folder is only seen through what os.access says of it
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != tmp_path)
    with pytest.raises(UnsafeOutputError, match=f"no permission to write in {tmp_path}$"):
        check_output_location(tmp_path / "in", tmp_path / "new" / "out")
    assert not (tmp_path / "new").exists()


def test_single_file_or_flat_glob_may_write_beside_itself(tmp_path):
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"x")
    check_output_location(photo, tmp_path / "results")
    check_output_location(photo, tmp_path)
    check_output_location(str(tmp_path / "*.jpg"), tmp_path / "results")
    with pytest.raises(UnsafeOutputError):  # a recursive glob would read the outputs back
        check_output_location(str(tmp_path / "**" / "*.jpg"), tmp_path / "results")


def test_writing_onto_the_input_itself_is_refused(tmp_path):
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"x")
    check_not_input(tmp_path / "other.jpg", photo)
    (tmp_path / "other.jpg").write_bytes(b"y")  # an existing file that is not the input
    check_not_input(tmp_path / "other.jpg", photo)
    with pytest.raises(UnsafeOutputError, match="input file itself"):
        check_not_input(tmp_path / "." / "photo.jpg", photo)


def test_write_never_overwrites_unasked_and_leaves_no_temp(tmp_path):
    target = tmp_path / "a.png"
    write_image(target, np.full((8, 8, 3), 7, np.uint8))
    with pytest.raises(FileExistsError):
        write_image(target, np.zeros((8, 8, 3), np.uint8))
    assert cv2.imread(str(target))[0, 0, 0] == 7
    write_image(target, np.zeros((8, 8, 3), np.uint8), overwrite=True)
    assert cv2.imread(str(target))[0, 0, 0] == 0
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
