"""`mpcnet benchmark degrade`."""
from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Optional

import typer

from mpcnet_cli.common import console, emit_json, fail


def degrade(
    images: Optional[Path] = typer.Option(None, help="Folder or image of faces to degrade "
                                          "(default: scikit-image's astronaut portrait)."),
    size: int = typer.Option(512, min=16, help="Image size (the paper's network size is 512)."),
    n: int = typer.Option(200, min=4, help="Degradations timed per pipeline."),
    seed: int = typer.Option(0, help="Seed of both pipelines' random draws."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON on stdout."),
) -> None:
    """Images/s of our eq. 1 degradation on one core, and its ratio to BasicSR's GFPGAN-style
    pipeline (random mixed kernels + noise + JPEG) on the same images in the same run."""
    # Imported here: mpcnet.data pulls in BasicSR and torch, which `mpcnet --help` should not wait for.
    from mpcnet.bench.degradation_speed import load_images, run
    from mpcnet.utils.image_io import ImageReadError

    try:
        imgs = load_images(images, size)
    except (FileNotFoundError, ImageReadError) as e:
        fail(str(e))
    with console.status("timing both pipelines on one thread…", spinner="dots") if not as_json else nullcontext():
        result = run(imgs, n=n, seed=seed)
    if as_json:
        emit_json(result)
        return
    ours, peer = result["mpcnet"], result["basicsr_gfpgan"]
    console.print(f"{size}px, 1 thread, {n} images each")
    console.print(f"  mpcnet eq. 1       {ours['images_per_s']:8.1f} images/s  ({ours['ms_per_image']} ms, p95 {ours['p95_ms']} ms)")
    console.print(f"  basicsr (GFPGAN)   {peer['images_per_s']:8.1f} images/s  ({peer['ms_per_image']} ms, p95 {peer['p95_ms']} ms)")
    console.print(f"  ratio {result['ratio']}×; per kernel (ms): {result['by_kernel_ms']}")
