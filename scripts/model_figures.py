"""Picture grids of a model's restorations for README and the model card (issue 12, "shown, not claimed").

    python scripts/model_figures.py HELDOUT_OUT DOCS [--weights NAME|PATH] [--mild MILD_OUT]

HELDOUT_OUT is the folder ``scripts/eval_heldout.sh`` wrote. Writes three JPEGs to DOCS:
* ``heldout_grid.jpg``: held-out faces, LQ input (eq. 1, bicubic-upsampled: what the network sees) |
  the model | GT;
* ``real_faces_grid.jpg``: real low-quality aligned faces without GT (CodeFormer's cropped and gray
  faces, the Solvay 1927 crops among them), input | the model;
* ``solvay_crop.jpg``: the 1927 Solvay photo restored at × 2 (``mpcnet restore``) beside a plain
  Lanczos × 2 of the same crop;
* with ``--mild``, ``heldout_mild_grid.jpg``: the same held-out faces from MILD_OUT, the folder
  ``PRESET=gfpgan-train scripts/eval_heldout.sh`` wrote (GFPGAN's milder ranges): LQ | the model | GT.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from mpcnet.eval_report import sample_grid

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
TILE = 256


def label(tile: np.ndarray, text: str) -> np.ndarray:
    """``tile`` with ``text`` written on a dark band at its top."""
    out = tile.copy()
    cv2.rectangle(out, (0, 0), (out.shape[1], 22), (0, 0, 0), -1)
    cv2.putText(out, text, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def grid(rows: list[list[np.ndarray]], names: list[str]) -> np.ndarray:
    """``mpcnet eval``'s sample grid, the first row's tiles carrying the column names."""
    first = [label(cv2.resize(t, (TILE, TILE), interpolation=cv2.INTER_AREA), n) for t, n in zip(rows[0], names)]
    return sample_grid([first, *rows[1:]], TILE)


def read(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_COLOR)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("heldout", type=Path)
    parser.add_argument("docs", type=Path)
    parser.add_argument("--weights", default="mpcnet-s256")
    parser.add_argument("--rows", type=int, default=6)
    parser.add_argument("--mild", type=Path, help="an eval_heldout.sh folder scored with PRESET=gfpgan-train")
    args = parser.parse_args()
    args.docs.mkdir(parents=True, exist_ok=True)
    quality = [cv2.IMWRITE_JPEG_QUALITY, 88]

    written = []
    for folder, name in ((args.heldout, "heldout_grid.jpg"), (args.mild, "heldout_mild_grid.jpg")):
        if folder is None:
            continue
        restored = folder / "model" / "restored_imgs"
        names = sorted(p.name for p in restored.glob("*.png"))[::3][:args.rows]
        rows = [[read(folder / "lq" / n), read(restored / n), read(folder / "gt" / n)] for n in names]
        cv2.imwrite(str(args.docs / name), grid(rows, ["LQ input", "mpcnet", "GT"]), quality)
        written.append(name)

    rows = []
    for folder, picks in (("cropped_faces", ("0143.png", "0368.png", "Solvay_conference_1927_0018.png")),
                          ("gray_faces", ("067_David_Beckham_00.png", "169_John_Lennon_00.png",
                                          "170_Marilyn_Monroe_00.png"))):
        out = args.heldout / f"niqe-{folder}-model" / "restored_imgs"
        rows += [[read(DATA / "codeformer-inputs" / folder / n), read(out / n)] for n in picks]
    pairs = [rows[i] + rows[i + 1] for i in range(0, len(rows), 2)]
    cv2.imwrite(str(args.docs / "real_faces_grid.jpg"), grid(pairs, ["input", "mpcnet"] * 2), quality)

    photo = DATA / "gpen-examples" / "imgs" / "Solvay_conference_1927.png"
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "mpcnet_cli.main", "restore", str(photo), "-o", tmp, "--weights",
                        args.weights, "--upscale", "2", "-q"], check=True)
        ours = read(Path(tmp) / "restored_imgs" / photo.name)
    src = read(photo)
    lanczos = cv2.resize(src, (src.shape[1] * 2, src.shape[0] * 2), interpolation=cv2.INTER_LANCZOS4)
    y, x, h, w = 120, 560, 300, 520  # the front rows, at × 2
    crop = [label(img[y:y + h, x:x + w], text) for img, text in ((lanczos, "Lanczos x2"), (ours, "mpcnet x2"))]
    cv2.imwrite(str(args.docs / "solvay_crop.jpg"), np.vstack(crop), quality)
    print("\n".join(str(args.docs / n) for n in written + ["real_faces_grid.jpg", "solvay_crop.jpg"]))


if __name__ == "__main__":
    main()
