"""`mpcnet export onnx`: the face network as an ONNX model, checked against PyTorch, optionally int8."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from mpcnet.deploy import CALIBRATION_FACES
from mpcnet.restoration import DEFAULT_WEIGHTS
from mpcnet_cli.common import console, emit_json, fail

app = typer.Typer(help="Export the face network for other runtimes.", no_args_is_help=True)


@app.command("onnx")
def onnx_(
    out: Path = typer.Option(..., "-o", "--out", help="The .onnx file to write (atomically; never replaced "
                             "without --overwrite)."),
    weights: Optional[str] = typer.Option(None, "--weights", help="MPCNet checkpoint: a path or a registry name "
                                          f"(default: the bundled '{DEFAULT_WEIGHTS}')."),
    faces: Optional[Path] = typer.Option(None, "--faces", help="Folder of real aligned face photos for the "
                                         "check (and, with --int8, for calibration); default: scikit-image's "
                                         "astronaut portrait for the check."),
    int8: bool = typer.Option(False, "--int8", help="Write a statically quantised int8 model (ONNX Runtime, QDQ): "
                              "calibrated on the first --calibration faces of --faces, its PSNR against the "
                              "fp32 model reported on the others."),
    calibration: int = typer.Option(CALIBRATION_FACES, "--calibration", min=1, help="With --int8: how many faces (first in "
                                    "name order) calibrate; the rest are held out."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output file."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
) -> None:
    """Export MPCNet to ONNX (opset 18, dynamic batch; input 'lq' (B,3,S,S) RGB in [-1, 1], output 'hq',
    and 'parse', the class map, when the network has a parsing prior). The exported model is run by
    ONNX Runtime on real faces and must match PyTorch within 1e-3 (max absolute difference, fp32),
    else nothing is written and the exit code is 1. The result runs with
    'mpcnet restore --backend onnxruntime --weights model.onnx'."""
    from mpcnet.archs import load_network
    from mpcnet.deploy import OnnxUnavailable, require
    from mpcnet.deploy.export import CHECK_TOLERANCE, export_onnx, load_faces, max_abs_difference
    from mpcnet.utils.image_io import list_images
    from mpcnet.utils.safe_output import write_bytes_atomic
    from mpcnet.weights import WeightsError

    if out.suffix.lower() != ".onnx":
        fail(f"--out must name an .onnx file, got '{out}'")
    if out.exists() and not overwrite:
        fail(f"{out} exists (use --overwrite to replace it)")
    if int8 and faces is None:
        fail("--int8 needs --faces: a folder of real aligned faces to calibrate on and to measure PSNR on")
    try:
        require("onnx", "onnxscript", "onnxruntime")
        face_files = list_images(faces)[1] if faces is not None else []
        if faces is not None and len(face_files) < (calibration + 1 if int8 else 1):
            raise ValueError(f"{faces} has {len(face_files)} images; "
                             + (f"--int8 needs more than --calibration {calibration}" if int8 else "need at least 1"))
        net, size = load_network(weights or DEFAULT_WEIGHTS)
    except (OnnxUnavailable, WeightsError, FileNotFoundError, ValueError) as exc:
        fail(str(exc).splitlines()[0])
    calib_files, check_files = (face_files[:calibration], face_files[calibration:]) if int8 else ([], face_files)
    with console.status("exporting…"):
        model = export_onnx(net, size, str(weights or DEFAULT_WEIGHTS))
    check = load_faces(check_files, size) if check_files else _astronaut(size)
    with console.status("checking against PyTorch…"):
        diff = max_abs_difference(net, model, check)
    report = {"weights": str(weights or DEFAULT_WEIGHTS), "size": size, "output": str(out),
              "check_faces": len(check), "max_abs_diff": diff, "tolerance": CHECK_TOLERANCE, "int8": int8}
    console.print(f"fp32 ONNX vs PyTorch on {len(check)} faces: max |difference| {diff:.2e} "
                  f"(tolerance {CHECK_TOLERANCE:g})")
    if diff > CHECK_TOLERANCE:
        console.print(f"[bold red]check failed:[/] {out} not written")
        if as_json:
            emit_json(report)
        raise typer.Exit(1)
    if int8:
        from mpcnet.deploy.quantize import psnr_against, quantize_int8

        with console.status(f"calibrating on {len(calib_files)} faces…"):
            fp32, model = model, quantize_int8(model, load_faces(calib_files, size))
        psnr = psnr_against(fp32, model, check)
        report.update(calibration_faces=[str(p) for p in calib_files], psnr_vs_fp32_db=psnr)
        console.print(f"int8 vs fp32 on {len(check)} held-out faces: {psnr:.2f} dB PSNR "
                      f"(calibrated on {len(calib_files)})")
    write_bytes_atomic(out, model)
    report["bytes"] = len(model)
    console.print(f"wrote {out} ({len(model) / 2**20:.1f} MiB)")
    if as_json:
        emit_json(report)


def _astronaut(size: int):
    """scikit-image's astronaut portrait (a real face, offline) as the network's input batch."""
    import cv2
    import numpy as np
    from skimage.data import astronaut

    from mpcnet.restoration.restorer import network_input

    bgr = cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR).astype(np.float32) / 255
    return network_input([bgr], size)
