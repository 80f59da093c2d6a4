"""`mpcnet restore`."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from mpcnet.restoration import BACKENDS, BG_UPSAMPLER_NAMES, DEFAULT_WEIGHTS, DETECTORS, VIDEO_CODECS
from mpcnet.utils.image_io import DEFAULT_MAX_PIXELS, IMAGE_EXTS, VIDEO_EXTS, list_images
from mpcnet.utils.safe_output import UnsafeOutputError, check_output_location
from mpcnet.weights import WeightsError
from mpcnet_cli.common import INTERRUPTED, console, emit_json, fail

STYLE = {"restored": "green", "no-face": "yellow", "skipped": "dim", "failed": "red"}
INPUTS_HELP = (f"Photos or videos, folders (recursive, sorted; photos and videos {'/'.join(e[1:] for e in VIDEO_EXTS)}; "
               "hidden files left out) or globs, one or several (as the shell expands *.jpg); outputs keep their "
               "paths relative to the folder the inputs share.")


def restore(
    inputs: list[str] = typer.Argument(..., help=INPUTS_HELP),
    out: Path = typer.Option(..., "-o", "--out", help="Output folder (restored_imgs/ and "
                             "restored_videos/ keep the input's relative paths); never inside the input folder."),
    weights: Optional[str] = typer.Option(None, help=f"MPCNet checkpoint: a path or a registry name "
                                          f"(default: the bundled '{DEFAULT_WEIGHTS}'), or with --backend "
                                          "onnxruntime an .onnx file from 'mpcnet export onnx' (fp32 or int8)."),
    backend: str = typer.Option("torch", "--backend", help=f"What runs the face network: {'|'.join(BACKENDS)} "
                                "(ONNX Runtime's CPU provider, or CUDA where present; about 15 % faster on CPU. A "
                                "checkpoint is exported once, ~13 s, and kept in $MPCNET_CACHE_DIR/onnx, default "
                                "~/.cache/mpcnet/onnx; needs the optional 'onnx' extra)."),
    upscale: Optional[int] = typer.Option(None, "--upscale", "-s", min=1, help="Output size = input size × N "
                                          "(default 2, or 1 for a photo whose ×2 would be over --max-pixels; 1 "
                                          "with --aligned, which keeps the input's size)."),
    fidelity: float = typer.Option(0.0, "--fidelity", "-w", min=0.0, max=1.0, help="W in [0, 1]: 0 = the network's "
                                   "restoration (strongest), 1 = the input face (most faithful); the aligned faces "
                                   "are blended (1 − W)·restored + W·input before paste-back."),
    detector: Optional[str] = typer.Option(None, help=f"Face detector: {'|'.join(DETECTORS)} (default: "
                                           "retinaface when its verified weights are present, else mtcnn)."),
    aligned: bool = typer.Option(False, "--aligned", help="Inputs are already FFHQ-aligned faces (no detection)."),
    only_center_face: bool = typer.Option(False, "--only-center-face", help="Restore only the face nearest "
                                          "the centre."),
    bg_upsampler: str = typer.Option("lanczos", help=f"Background upscaling: {'|'.join(BG_UPSAMPLER_NAMES)} "
                                     "(none needs --upscale 1; realesrgan needs the realesrgan package and "
                                     "'mpcnet weights fetch realesrgan-x2plus')."),
    ext: str = typer.Option("auto", help="Output format: auto (as the input), png or jpg."),
    suffix: str = typer.Option("", help="Appended to output names: NAME_SUFFIX.ext."),
    save_faces: bool = typer.Option(False, "--save-faces", help="Also write the aligned input and restored "
                                    "faces (cropped_faces/, restored_faces/)."),
    save_comparison: bool = typer.Option(False, "--save-comparison", help="Also write input|restored side by "
                                         "side (cmp/)."),
    faces_only: bool = typer.Option(False, "--faces-only", help="Do not write photos in which no face is found."),
    draw_box: bool = typer.Option(False, "--draw-box", help="Draw the detected boxes and 5 landmarks on the output."),
    codec: str = typer.Option("auto", help=f"Video codec: {'|'.join(VIDEO_CODECS)} (auto: libx264, VP9 for .webm); "
                              "videos keep their container, frame rate, frame count and audio (copied)."),
    crf: int = typer.Option(18, min=0, max=51, help="Video quality: constant rate factor, lower is better "
                            "(18 ≈ visually lossless with x264)."),
    smooth: bool = typer.Option(True, "--smooth/--no-smooth", help="Videos: track faces across frames, smoothing "
                                "boxes and landmarks over time and reusing detections while faces barely move "
                                "(--no-smooth: detect each frame on its own)."),
    device: str = typer.Option("auto", help="auto (CUDA, else MPS on Apple silicon, else CPU), cpu, cuda or mps "
                               "(operators MPS lacks run on the CPU)."),
    amp: bool = typer.Option(False, "--amp", help="Run the face network under bf16 autocast."),
    batch_size: int = typer.Option(8, min=1, help="Faces per network batch, at most (faces of several photos "
                                   "share one; fewer when the next photo is not read yet, unless --fixed-batch)."),
    fixed_batch: Optional[bool] = typer.Option(None, "--fixed-batch/--no-fixed-batch", help="Run every network "
                                               "call at --batch-size faces (the last batch padded), so a face's "
                                               "result does not depend on the faces batched with it: outputs are "
                                               "then byte-identical whatever the number of processes or where a "
                                               "run was resumed. Costs up to batch-size − 1 extra faces per "
                                               "process. [default: on with --launcher pytorch]"),
    launcher: str = typer.Option("none", "--launcher", help="none, or pytorch under torchrun: each process "
                                 "restores its share of the inputs (balanced by pixel count) on its own GPU "
                                 "(cuda:LOCAL_RANK) or share of the CPU threads; rank 0 prints the merged "
                                 "summary. E.g. torchrun --nproc-per-node 2 $(which mpcnet) restore IN -o OUT "
                                 "--launcher pytorch"),
    max_pixels: int = typer.Option(DEFAULT_MAX_PIXELS, help="Refuse larger images (decompression-bomb guard)."),
    skip_existing: bool = typer.Option(False, "--skip-existing", help="Skip inputs whose output exists (resume)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary (per file and per stage) on stdout."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or per-file lines; failures "
                               "are still printed."),
) -> None:
    """Restore the faces in photos and videos: detect, align to the FFHQ template, restore with
    MPCNet in batches, paste back with a soft mask over the upscaled background, write atomically
    (videos frame by frame as a stream, into restored_videos/). Inputs are never modified.
    Exit code 0 when every file succeeded (a photo without a face is a success, reported), 1 when
    any failed, 2 for a bad request."""
    # The pipeline pulls in torch; imported here so that `mpcnet --help` starts fast.
    from mpcnet.deploy import OnnxUnavailable
    from mpcnet.restoration.background import BackgroundUpsamplerError
    from mpcnet.restoration.builder import build_pipeline
    from mpcnet.restoration.options import RestoreOptions
    from mpcnet.restoration.results import Summary
    from mpcnet.restoration.video import VideoError, VideoRestorer, import_av, video_pixels
    from mpcnet.utils.dist import DistError
    from mpcnet.utils.image_io import pixel_count
    from mpcnet.utils.safe_output import remove_stale_parts

    try:
        options = RestoreOptions(upscale=upscale, aligned=aligned, only_center_face=only_center_face, ext=ext,
                                 suffix=suffix, save_faces=save_faces, save_comparison=save_comparison,
                                 bg_upsampler=bg_upsampler, max_pixels=max_pixels, faces_only=faces_only,
                                 skip_existing=skip_existing, overwrite=overwrite, fidelity=fidelity,
                                 draw_box=draw_box)
        root, files = list_images(inputs, IMAGE_EXTS + VIDEO_EXTS)
        videos = [f for f in files if f.suffix.lower() in VIDEO_EXTS]
        files = [f for f in files if f not in videos]
        if videos:
            import_av()
        check_output_location(inputs, out)
    except (ValueError, FileNotFoundError, UnsafeOutputError, VideoError) as e:
        fail(str(e))
    if not files and not videos:
        fail(f"no images or videos found in {', '.join(inputs)}")
    try:
        with console.status("exporting the network to ONNX…" if backend == "onnxruntime" else "loading…"):
            built = build_pipeline(weights, device, detector, options, backend=backend, amp=amp,
                                   batch_size=batch_size, fixed_batch=fixed_batch, launcher=launcher)
        pipeline, launch, setup = built.pipeline, built.launch, built.setup
        video_restorer = VideoRestorer(pipeline, codec, crf, smooth) if videos else None
    except (WeightsError, OnnxUnavailable, BackgroundUpsamplerError, DistError, ValueError) as e:
        fail(str(e).splitlines()[0])
    try:  # a resume first removes the temporary files of writes a kill -9 cut short; then each takes its share
        stale = remove_stale_parts(out) if skip_existing and launch.main else []
        launch.barrier()
        is_video = set(videos).__contains__
        mine = set(launch.shard(files + videos, lambda f: video_pixels(f) if is_video(f) else pixel_count(f),
                                key=lambda f: (video_restorer if is_video(f) else pipeline).output_path(f, root, out)))
    except DistError as e:
        fail(str(e))
    if not quiet and launch.main:
        console.print("restore: " + ", ".join(f"{k} {v}" for k, v in setup.items()))
        if stale:
            console.print(f"removed {len(stale)} temporary file(s) of writes an earlier run left unfinished")
    my_files, my_videos = [f for f in files if f in mine], [f for f in videos if f in mine]
    show = not quiet and console.is_terminal and launch.main
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[faces]} faces, {task.fields[rate]:.2f} {task.fields[unit]}/s"),
                  TimeElapsedColumn(), console=console, disable=not show, transient=True) as progress:
        task = progress.add_task("restore", total=len(mine), faces=0, rate=0.0, unit="faces")

        def on_result(result):
            if result.status == "failed" or (not quiet and result.message):
                console.print(f"[{STYLE[result.status]}]{result.status}[/] {result.source}: {result.message}")
            done = progress.tasks[0]
            faces = done.fields["faces"] + result.faces
            elapsed = done.elapsed or 0.0
            progress.update(task, advance=1, faces=faces, rate=faces / elapsed if elapsed else 0.0)

        summary = pipeline.run(my_files, root, out, on_result)
        if my_videos and not summary.interrupted:
            frames_task = progress.add_task("frames", total=0, visible=False, faces=0, rate=0.0, unit="frames")

            def on_start(video, frames):
                progress.reset(frames_task, total=frames, description=video.name, visible=True, faces=0, rate=0.0,
                               unit="frames")

            def on_frame(faces):
                done = progress.tasks[frames_task]
                elapsed = done.elapsed or 0.0
                progress.update(frames_task, advance=1, faces=done.fields["faces"] + faces,
                                rate=(done.completed + 1) / elapsed if elapsed else 0.0)

            video_restorer.run(my_videos, root, out, summary, on_result, on_start, on_frame)
    if not summary.interrupted:
        try:
            summary = Summary.merge(launch.all_gather(summary), files + videos)
        except DistError as e:
            fail(str(e), INTERRUPTED)
    if not launch.main:
        raise typer.Exit(INTERRUPTED if summary.interrupted else 0 if summary.ok else 1)
    report = summary.to_dict()
    if as_json:
        emit_json({**setup, "output": str(out / "restored_imgs"),
                   **({"video_output": str(out / "restored_videos")} if videos else {}), **report})
    elif not quiet:
        rate = f", {report['faces_per_s']:.2f} faces/s" if report["faces_per_s"] else ""
        console.print(f"{report['restored']} restored ({report['faces']} faces), {report['no_face']} without a "
                      f"face, {report['skipped']} skipped, {report['failed']} failed in {report['seconds']:.1f}s"
                      f"{rate}; outputs in {out / 'restored_imgs'}{' and ' + str(out / 'restored_videos') if videos else ''}")
    if summary.interrupted:
        share = " (this process's share)" if launch.world_size > 1 else ""
        console.print(f"[red]interrupted[/] after {report['files']} of {len(mine)} files{share}; finished outputs are "
                      "kept, none is partial: rerun with --skip-existing to do the rest")
        raise typer.Exit(INTERRUPTED)
    if not summary.ok:
        raise typer.Exit(1)
