"""Where issue 12's detail target lies against what was reached: detail against fidelity on the held-out faces.

    python scripts/heldout_frontier.py [LABEL=]OUT ... [--sharpen [LABEL=]OUT] [-o docs/heldout_frontier.png]

Each OUT is a folder ``scripts/eval_heldout.sh`` wrote (one model checkpoint each); its label is the
folder's name unless given as ``LABEL=OUT``. ``--sharpen OUT`` adds the cheapest way to buy detail,
an unsharp mask (``out + a·(out − G_σ * out)``, σ 1 and 2 px at 512 px, a = 0.5 … 3) applied to that
model's restored faces, to show what a learned model's extra detail costs against a plain filter.
Plots detail (``grad_ratio``) against the gain in PSNR and in SSIM over the input, with the target
box (PSNR ≥ input + 0.5 dB, SSIM ≥ input + 0.03, detail 0.75–1.25 of the GT's), and prints every
point as a JSON line on stdout.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from mpcnet.eval_scoring import load_bgr8
from mpcnet.metrics.pixel import grad_ratio, psnr, ssim

TARGET = {"psnr": 0.5, "ssim": 0.03, "detail": (0.75, 1.25)}
SHARPEN = {"sigma": (1.0, 2.0), "amount": (0.5, 1.0, 2.0, 3.0)}


def labelled(arg: str) -> tuple[str, Path]:
    """``LABEL=OUT`` or ``OUT`` (labelled by its folder's name) → (label, folder)."""
    label, _, folder = arg.rpartition("=")
    return label or Path(folder).name, Path(folder)


def run_point(label: str, out: Path) -> dict:
    """The model's and the input's mean PSNR, SSIM and detail from an ``eval_heldout.sh`` folder."""
    model, inp = (json.loads((out / f"{name}.json").read_text())["metrics"] for name in ("model", "input"))
    return {"label": label, "psnr": model["psnr"], "ssim": model["ssim"], "detail": model["grad_ratio"],
            "input": {"psnr": inp["psnr"], "ssim": inp["ssim"], "detail": inp["grad_ratio"]}}


def unsharp(bgr: np.ndarray, sigma: float, amount: float) -> np.ndarray:
    """Unsharp mask: ``bgr + amount · (bgr − Gaussian_σ * bgr)``, rounded to 8 bits."""
    img = bgr.astype(np.float32)
    return np.clip(img + amount * (img - cv2.GaussianBlur(img, (0, 0), sigma)), 0, 255).round().astype(np.uint8)


def sharpen_points(label: str, out: Path) -> list[dict]:
    """Mean PSNR, SSIM and detail of the unsharp-masked restorations of ``out`` against its GT."""
    gts = {path.stem: path for path in (out / "gt").iterdir()}
    pairs = [(load_bgr8(path), load_bgr8(gts[path.stem]))
             for path in sorted((out / "model" / "restored_imgs").iterdir()) if path.stem in gts]
    points = []
    for sigma in SHARPEN["sigma"]:
        for amount in SHARPEN["amount"]:
            sharp = [(unsharp(restored, sigma, amount), gt) for restored, gt in pairs]
            points.append({"label": f"{label} + unsharp σ{sigma:g} a{amount:g}", "sigma": sigma, "amount": amount,
                           **{name: float(np.mean([fn(s, gt) for s, gt in sharp]))
                              for name, fn in (("psnr", psnr), ("ssim", ssim), ("detail", grad_ratio))}})
    return points


def plot(runs: list[dict], sharpened: list[dict], path: Path) -> None:
    """Two panels, detail against the PSNR and the SSIM gain over the input, target box shaded."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    inp = runs[0]["input"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 6), sharey=True)
    for ax, metric, unit in ((axes[0], "psnr", "dB"), (axes[1], "ssim", "")):
        gains = [r[metric] - inp[metric] for r in runs + sharpened] + [0.0, 2 * TARGET[metric]]
        lo, hi = min(gains), max(gains)
        ax.fill_between([TARGET[metric], hi + 0.1 * (hi - lo)], *TARGET["detail"], color="tab:green", alpha=0.15,
                        label="issue 12's target")
        ax.scatter([0], [inp["detail"]], marker="s", color="black", label="input")
        for sigma in SHARPEN["sigma"]:
            curve = [p for p in sharpened if p["sigma"] == sigma]
            if curve:
                ax.plot([p[metric] - inp[metric] for p in curve], [p["detail"] for p in curve], "--o", ms=3,
                        label=f"{curve[0]['label'].split(' + ')[0]} + unsharp mask σ {sigma:g}, a 0.5–3")
        for r, marker in zip(runs, "ovD^<>pP*hX" * 3):
            ax.scatter([r[metric] - inp[metric]], [r["detail"]], s=34, marker=marker, label=r["label"])
        ax.set_xlim(lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo))
        ax.set_xlabel(f"{metric.upper()} gain over the input{f' ({unit})' if unit else ''}")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("detail (mean Sobel gradient ÷ the GT's)")
    axes[0].set_ylim(0.3, 1.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7, loc="lower center", ncol=3, frameon=False)
    fig.suptitle(f"{len(runs)} checkpoints on the held-out faces (scripts/eval_heldout.sh): detail against fidelity",
                 fontsize=10)
    fig.tight_layout(rect=(0, 0.17, 1, 1))
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="eval_heldout.sh folders, each OUT or LABEL=OUT")
    parser.add_argument("--sharpen", metavar="[LABEL=]OUT", help="unsharp-mask this folder's restorations as a baseline")
    parser.add_argument("-o", "--output", type=Path, default=Path("docs/heldout_frontier.png"))
    args = parser.parse_args()
    runs = [run_point(*labelled(arg)) for arg in args.runs]
    sharpened = sharpen_points(*labelled(args.sharpen)) if args.sharpen else []
    for point in runs + sharpened:
        print(json.dumps({k: v for k, v in point.items() if k != "input"}))
    plot(runs, sharpened, args.output)


if __name__ == "__main__":
    main()
