"""`mpcnet restore` on videos: tiny clips (≤ 2 s, ≤ 256 px, sine audio) made in the tests from the
real photos, restored as a stream with the frame count, frame rate and audio kept; bad videos
reported one by one; face tracking lowers the flicker of the restored faces."""
import hashlib
import json
import sys
from fractions import Fraction

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

av = pytest.importorskip("av", reason="videos need the 'video' extra (PyAV)")

from mpcnet.bench.clip import make_clip  # noqa: E402
from mpcnet.restoration.video import frame_to_bgr  # noqa: E402
from mpcnet_cli.main import app  # noqa: E402
from tests.conftest import DATA, shared_file  # noqa: E402

WHOLE = DATA / "codeformer-inputs" / "whole_imgs"
runner = CliRunner()


def stream_facts(path):
    """Decoded video frames, frame rate, and the decoded audio's duration in seconds."""
    with av.open(str(path)) as c:
        rate = float(c.streams.video[0].average_rate)
        frames = sum(1 for _ in c.decode(video=0))
    with av.open(str(path)) as c:
        audio = sum(f.samples / f.sample_rate for f in c.decode(audio=0)) if c.streams.audio else None
    return frames, rate, audio


def tree_hashes(folder):
    return {p.relative_to(folder): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def restore(*args):
    result = runner.invoke(app, ["restore", *map(str, args)])
    return result, json.loads(result.stdout) if "--json" in args and result.stdout.strip() else None


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """A photo, a good clip at a fractional NTSC rate, and the bad videos of the issue."""
    src = tmp_path_factory.mktemp("media")
    (src / "photo.jpg").write_bytes((WHOLE / "03.jpg").read_bytes())
    make_clip(WHOLE / "03.jpg", src / "clip.mp4", size=192, seconds=1.2, fps=30000 / 1001)
    good = (src / "clip.mp4").read_bytes()
    (src / "cut.mp4").write_bytes(good[:len(good) // 2])
    make_clip(WHOLE / "03.jpg", src / "whole.mkv", size=64, seconds=0.4, fps=25)  # no frame count; audio longer
    (src / "cut.mkv").write_bytes((src / "whole.mkv").read_bytes()[:int(0.6 * (src / "whole.mkv").stat().st_size)])
    (src / "whole.mkv").unlink()
    with av.open(str(src / "sound.mp4"), "w") as out:  # audio only
        audio = out.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 8000), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 16000, 0
        out.mux(audio.encode(frame))
        out.mux(audio.encode(None))
    with av.open(str(src / "empty.avi"), "w") as out:  # a video stream without frames
        video = out.add_stream("mpeg4", rate=25)
        video.width, video.height, video.pix_fmt = 64, 64, "yuv420p"
        out.start_encoding()
    with av.open(str(src / "vfr.mp4"), "w") as out:  # frames 40 and 80 ms apart
        video = out.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 64, 64, "yuv420p"
        pts = 0
        for i in range(12):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), 20 * i, np.uint8), format="bgr24")
            frame.pts, frame.time_base = pts, Fraction(1, 100)
            pts += 4 if i % 2 else 8
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
    return src


def test_a_folder_of_photos_and_videos(media, tiny_weights, tmp_path):
    before = tree_hashes(media)
    out = tmp_path / "out"
    result, report = restore(media, "-o", out, "--weights", tiny_weights, "--detector", "yunet", "--json", "-q")
    assert result.exit_code == 1, result.output  # the bad videos failed, the rest did not
    status = {r["source"].rsplit("/", 1)[1]: r for r in report["results"]}
    assert status["photo.jpg"]["status"] == "restored"
    clip = status["clip.mp4"]
    assert clip["status"] == "restored" and clip["frames"] == 36 and clip["faces"] >= 30
    assert status["sound.mp4"]["message"] == "no video stream"
    assert status["empty.avi"]["message"] == "no frames in the video stream"
    assert "truncated" in status["cut.mp4"]["message"]
    assert status["cut.mkv"]["message"].startswith("truncated: ") and "of its 10 frames (0.40 s)" in \
        status["cut.mkv"]["message"]  # it was restored, with half its frames, as a success
    assert status["vfr.mp4"]["message"].startswith("variable frame rate (frames 40.0 to 80.0 ms apart)")
    assert all(r["status"] == "failed" and "\n" not in r["message"] for name, r in status.items()
               if name not in ("photo.jpg", "clip.mp4"))
    frames, rate, audio = stream_facts(media / "clip.mp4")
    out_frames, out_rate, out_audio = stream_facts(clip["output"])
    assert out_frames == frames == 36
    assert abs(out_rate - 30000 / 1001) < 0.01 and abs(out_rate - rate) < 0.01
    assert abs(out_audio - audio) < 0.05 and abs(out_audio - 1.2) < 0.05
    with av.open(str(media / "clip.mp4")) as c, av.open(clip["output"]) as o:
        v, w = c.streams.video[0], o.streams.video[0]
        assert (w.width, w.height) == (2 * v.width, 2 * v.height)  # the default --upscale 2
        assert o.streams.audio[0].codec_context.name == c.streams.audio[0].codec_context.name == "aac"
    assert sorted(p.name for p in (out / "restored_videos").iterdir()) == ["clip.mp4"]  # nothing left of failures
    assert tree_hashes(media) == before


def test_a_truncated_matroska_file_is_found_by_its_streams_duration(tmp_path):
    """Matroska and WebM record no frame count, but each stream's duration; the container's is no
    measure, as its audio (0.46 s here) may run longer than its video (0.40 s)."""
    from mpcnet.restoration.video import VideoError, probe

    whole = tmp_path / "whole.mkv"
    make_clip(WHOLE / "03.jpg", whole, size=64, seconds=0.4, fps=25)
    assert probe(whole).frames == 10 and probe(whole).audio
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole.read_bytes()[:int(0.6 * whole.stat().st_size)])
    with pytest.raises(VideoError, match=r"^truncated: \d of its 10 frames \(0.40 s\) are in the file$"):
        probe(cut)


def test_avi_output_keeps_its_frames_in_time_order(tiny_weights, tmp_path):
    """H.264's reordered (B-)frames scrambled an AVI's timestamps (decoded pts 1, 4, 3, 5, 2, …)."""
    photo = cv2.resize(cv2.imread(str(WHOLE / "03.jpg")), (96, 128))
    (tmp_path / "in").mkdir()
    with av.open(str(tmp_path / "in" / "m.avi"), "w") as out:  # MPEG-4 part 2, as older cameras write
        video = out.add_stream("mpeg4", rate=25)
        video.width, video.height, video.pix_fmt = 96, 128, "yuv420p"
        for i in range(12):
            frame = av.VideoFrame.from_ndarray(np.roll(photo, 2 * i, axis=1), format="bgr24")
            frame.pts = i
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
    result, report = restore(tmp_path / "in", "-o", tmp_path / "out", "--weights", tiny_weights, "--detector",
                             "yunet", "--upscale", "1", "--json", "-q")
    assert result.exit_code == 0, result.output
    with av.open(str(tmp_path / "out" / "restored_videos" / "m.avi")) as c:
        pts = [frame.pts for frame in c.decode(video=0)]
    assert len(pts) == 12 and pts == sorted(pts) and len(set(np.diff(pts))) == 1


def test_restored_frames_carry_the_restored_face(tiny_weights, tmp_path):
    """The network's face is pasted in every frame: it differs from the upscaled input at the face
    and nowhere far from it; --fidelity 1 gives the input face back."""
    clip = make_clip(WHOLE / "03.jpg", tmp_path / "clip.mp4", size=160, seconds=0.4, fps=10, audio_hz=None,
                     radius=0)
    outputs = {}
    for w in ("0", "1"):
        result, report = restore(clip, "-o", tmp_path / w, "--weights", tiny_weights, "--detector", "yunet",
                                 "-w", w, "--upscale", "1", "--crf", "0", "--json", "-q")
        assert result.exit_code == 0, result.output
        assert "detection reused on 3" in report["results"][0]["message"]  # a still face is detected once
        with av.open(report["results"][0]["output"]) as c:
            outputs[w] = [frame_to_bgr(f).astype(int) for f in c.decode(video=0)]
    with av.open(str(clip)) as c:
        inputs = [frame_to_bgr(f).astype(int) for f in c.decode(video=0)]
    assert len(outputs["0"]) == len(inputs) == 4
    for restored, faithful, original in zip(outputs["0"], outputs["1"], inputs):
        diff = np.abs(restored - original).mean(axis=2)
        assert diff.max() > 40 and np.abs(faithful - original).mean() < np.abs(restored - original).mean() / 3
        assert diff[:, :10].max() < 12  # the left edge, far from the face: only codec noise


def test_rotated_phone_video_is_turned_upright(tiny_weights, tmp_path):
    clip = make_clip(WHOLE / "03.jpg", tmp_path / "phone.mp4", size=128, seconds=0.4, fps=10, rotation=90)
    with av.open(str(clip)) as c:
        stored = (c.streams.video[0].width, c.streams.video[0].height)
    result, report = restore(clip, "-o", tmp_path / "out", "--weights", tiny_weights, "--detector", "yunet",
                             "--upscale", "1", "--json", "-q")
    assert result.exit_code == 0, result.output
    assert "turned upright (90° rotation in its metadata)" in report["results"][0]["message"]
    with av.open(report["results"][0]["output"]) as c:
        frame = next(c.decode(video=0))
        assert (frame.width, frame.height) == stored[::-1] and frame.rotation == 0


def test_video_outputs_are_never_overwritten_unasked(tiny_weights, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    make_clip(WHOLE / "03.jpg", src / "a.mp4", size=96, seconds=0.3, fps=10)
    args = ["--weights", tiny_weights, "--detector", "yunet", "--json", "-q"]
    assert restore(src, "-o", tmp_path / "out", *args)[0].exit_code == 0
    written = tree_hashes(tmp_path / "out")
    result, report = restore(src, "-o", tmp_path / "out", *args)
    assert result.exit_code == 1 and "exists (use --overwrite" in report["results"][0]["message"]
    result, report = restore(src, "-o", tmp_path / "out", "--skip-existing", *args)
    assert result.exit_code == 0 and report["results"][0]["status"] == "skipped"
    assert tree_hashes(tmp_path / "out") == written
    assert restore(src, "-o", src / "out", *args)[0].exit_code == 2  # never into the input folder
    assert not (src / "out").exists()
    result, _ = restore(src, "-o", tmp_path / "o2", "--aligned", *args)
    assert result.exit_code == 2 and "aligned mode applies to photos" in result.output


def test_missing_pyav_is_one_clear_error(tmp_path, monkeypatch, tiny_weights):
    make_clip(WHOLE / "03.jpg", tmp_path / "a.mp4", size=64, seconds=0.2, fps=10, audio_hz=None)
    monkeypatch.setitem(sys.modules, "av", None)  # import av → ImportError
    result, _ = restore(tmp_path / "a.mp4", "-o", tmp_path / "out", "--weights", tiny_weights)
    assert result.exit_code == 2 and "mpcnet[video]" in result.output
    assert not (tmp_path / "out").exists()


def test_face_tracking_lowers_flicker_and_benchmark_reports_frames_per_s(tmp_path):
    """A still photo panned by a known 2 px circle: the restored faces of consecutive frames
    differ less with tracking (smoothed landmarks) than with per-frame detection."""
    shared_file("weights", "retinaface_mobilenet0.25_Final.pth")
    clip = make_clip(WHOLE / "03.jpg", tmp_path / "pan.mp4", size=256, seconds=2, fps=15, radius=2)
    result = runner.invoke(app, ["benchmark", "restore", str(clip), "--json", "--md", str(tmp_path / "b.md")])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{"):])
    off, on = report["smoothing"]["off"], report["smoothing"]["on"]
    assert off["frames"] == on["frames"] == 30 and off["frames_per_s"] > 0 and on["frames_per_s"] > 0
    assert 0 < on["flicker"] < off["flicker"]
    assert "| face tracking | frames | frames/s |" in (tmp_path / "b.md").read_text()
