"""Face detectors on the real whole photos: faces found where people are, five landmarks in the
FFHQ template's order, the same face located alike by every detector."""
import cv2
import numpy as np
import pytest

from mpcnet.restoration.detectors import DETECTORS, Face, default_detector, detect_faces, make_detector
from tests.conftest import DATA, SHARED_WEIGHTS, shared_file

# People visible in each photo (counted by eye); the Solvay 1927 group has 29 sitters.
PEOPLE = {"00.jpg": 4, "01.jpg": 4, "02.png": 4, "03.jpg": 1, "04.jpg": 1, "05.jpg": 1, "06.png": 2}
SOLVAY = ("data", "gpen-examples", "imgs", "Solvay_conference_1927.png")


@pytest.fixture(scope="module", params=DETECTORS)
def detector(request):
    if request.param == "yunet":
        shared_file("weights", "face_detection_yunet.onnx")
    if request.param == "retinaface":
        shared_file("weights", "retinaface_mobilenet0.25_Final.pth")
    with pytest.MonkeyPatch.context() as mp:  # module scope runs before the autouse env fixture
        mp.setenv("MPCNET_WEIGHTS_DIR", str(SHARED_WEIGHTS))
        return make_detector(request.param)


def _check_geometry(face: Face):
    eye_l, eye_r, nose, mouth_l, mouth_r = face.landmarks
    assert eye_l[0] < eye_r[0] and mouth_l[0] < mouth_r[0]  # image-left first, as in the template
    assert max(eye_l[1], eye_r[1]) < nose[1] < min(mouth_l[1], mouth_r[1]) + 2
    x1, y1, x2, y2 = face.box
    assert all(x1 - 2 <= p[0] <= x2 + 2 and y1 - 2 <= p[1] <= y2 + 2 for p in face.landmarks)


def test_finds_every_person_in_the_whole_photos(detector):
    for name, people in PEOPLE.items():
        bgr = cv2.imread(str(DATA / "codeformer-inputs" / "whole_imgs" / name))
        faces = detect_faces(detector, bgr)
        assert len(faces) == people, (detector.name, name)
        for face in faces:
            _check_geometry(face)
        assert [f.score for f in faces] == sorted((f.score for f in faces), reverse=True)


def test_many_small_faces_in_the_solvay_photo(detector):
    bgr = cv2.imread(str(shared_file(*SOLVAY)))
    faces = detect_faces(detector, bgr)
    assert 25 <= len(faces) <= 30
    for face in faces:
        _check_geometry(face)


def test_no_face_in_a_landscape(detector):
    from skimage import data
    assert detect_faces(detector, cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR)) == []


@pytest.mark.parametrize("size", [(16, 16), (17, 30)])
def test_a_photo_smaller_than_any_face_has_no_face(detector, size):
    """MTCNN's pyramid is empty below its smallest face (20 px), where it used to raise."""
    photo = cv2.resize(cv2.imread(str(DATA / "codeformer-inputs" / "whole_imgs" / "00.jpg")), size[::-1],
                       interpolation=cv2.INTER_AREA)
    assert detect_faces(detector, photo) == []


def test_detection_on_a_downscaled_copy_maps_back_to_full_resolution():
    det = make_detector("mtcnn")
    bgr = cv2.imread(str(DATA / "codeformer-inputs" / "whole_imgs" / "06.png"))
    full = detect_faces(det, bgr)
    small = detect_faces(det, bgr, max_side=max(bgr.shape[:2]) // 2)
    assert len(full) == len(small) == 2
    eye_dist = np.linalg.norm(full[0].landmarks[0] - full[0].landmarks[1])
    for a, b in zip(sorted(full, key=lambda f: f.box[0]), sorted(small, key=lambda f: f.box[0])):
        assert np.abs(a.landmarks - b.landmarks).max() < 0.15 * eye_dist


def test_detectors_agree_on_the_landmarks():
    shared_file("weights", "face_detection_yunet.onnx")
    shared_file("weights", "retinaface_mobilenet0.25_Final.pth")
    bgr = cv2.imread(str(DATA / "codeformer-inputs" / "whole_imgs" / "02.png"))
    per_detector = [sorted(detect_faces(make_detector(n), bgr), key=lambda f: f.box[0]) for n in DETECTORS]
    for faces in zip(*per_detector):
        eye_dist = np.linalg.norm(faces[0].landmarks[0] - faces[0].landmarks[1])
        for other in faces[1:]:
            assert np.abs(other.landmarks - faces[0].landmarks).max() < 0.35 * eye_dist


def test_default_is_retinaface_when_its_weights_are_present(monkeypatch, tmp_path):
    shared_file("weights", "retinaface_mobilenet0.25_Final.pth")
    assert default_detector() == "retinaface"
    monkeypatch.setenv("MPCNET_WEIGHTS_DIR", str(tmp_path))
    assert default_detector() == "mtcnn"
    with pytest.raises(Exception, match="mpcnet weights fetch retinaface-mobile"):
        make_detector("retinaface")


@pytest.mark.parametrize("name", ["00.jpg", "02.png", "06.png"])
def test_retinaface_finds_what_facexlibs_own_detect_faces_finds(name):
    """Our decoding with vectorised anchors gives facexlib's boxes, scores and landmarks."""
    import torch
    from facexlib.detection.retinaface_utils import PriorBox

    from mpcnet.restoration.detectors import retinaface_priors

    shared_file("weights", "retinaface_mobilenet0.25_Final.pth")
    det = make_detector("retinaface")
    assert torch.equal(retinaface_priors(det.net.cfg, 645, 1204), PriorBox(det.net.cfg, (645, 1204)).forward())
    bgr = cv2.imread(str(DATA / "codeformer-inputs" / "whole_imgs" / name))
    with torch.inference_mode():
        rows = det.net.detect_faces(bgr, conf_threshold=det.threshold)
    ours = np.array([[*f.box, f.score, *f.landmarks.ravel()] for f in det.detect(bgr)])
    assert len(rows) == len(ours) == PEOPLE[name]
    assert np.abs(rows[np.argsort(-rows[:, 4])] - ours[np.argsort(-ours[:, 4])]).max() < 1e-3
