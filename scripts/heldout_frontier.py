"""Where issue 12's detail target lies against what was reached: detail against fidelity on the held-out faces.

    python scripts/heldout_frontier.py [LABEL=]OUT ... [--baselines [LABEL=]OUT] [-o docs/heldout_frontier.png]

Each OUT is a folder ``scripts/eval_heldout.sh`` wrote (one model checkpoint each); its label is the
folder's name unless given as ``LABEL=OUT``. ``--baselines OUT`` adds two families of edits of that
model's restored faces, each a curve from the model's point, and one bound:
* the cheapest way to buy detail, an unsharp mask ``out + a·(out − G_σ * out)`` (σ 1 and 2 px at
  512 px, a = 0.5 … 3): what a learned model's extra detail costs against a plain filter;
* an oracle no model can be: the output's fine detail (``out − G_2 * out``) replaced, in proportion
  β = 0.5 and 1, by **the GT's own** fine detail moved by d px diagonally (d = 0, 1, 2, 4: 0, 1.4,
  2.8, 5.7 px; the models' landmark error is 4.5–4.9 px): what inventing the right texture costs
  when the degraded input fixes its place only to within a few pixels;
* a bound from the input's sampling alone: each GT resized down by its face's r (``lq/manifest.csv``;
  area) and back (bicubic), with no blur, noise or JPEG: the detail the input's pixels could carry
  were eq. 1 a mere resize; what the GT has beyond it lies above the input's Nyquist frequency, and a
  model must invent it.
Plots detail (``grad_ratio``) against the gain in PSNR and in SSIM over the input, with the target
box (PSNR ≥ input + 0.5 dB, SSIM ≥ input + 0.03, detail 0.75–1.25 of the GT's), and prints every
point as a JSON line on stdout.
"""
from __future__ import annotations

import argparse
import csv
import json
from collections.abc import Callable
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from mpcnet.eval_scoring import load_bgr8
from mpcnet.metrics.pixel import grad_ratio, psnr, ssim

TARGET = {"psnr": 0.5, "ssim": 0.03, "detail": (0.75, 1.25)}
UNSHARP = {"sigma": (1.0, 2.0), "amount": (0.5, 1.0, 2.0, 3.0)}
ORACLE = {"sigma": 2.0, "shift": (0, 1, 2, 4), "beta": (0.5, 1.0)}


def labelled(arg: str) -> tuple[str, Path]:
    """``LABEL=OUT`` or ``OUT`` (labelled by its folder's name) → (label, folder)."""
    label, _, folder = arg.rpartition("=")
    return label or Path(folder).name, Path(folder)


def run_point(label: str, out: Path) -> dict:
    """The model's and the input's mean PSNR, SSIM and detail from an ``eval_heldout.sh`` folder."""
    model, inp = (json.loads((out / f"{name}.json").read_text())["metrics"] for name in ("model", "input"))
    return {"label": label, "psnr": model["psnr"], "ssim": model["ssim"], "detail": model["grad_ratio"],
            "input": {"psnr": inp["psnr"], "ssim": inp["ssim"], "detail": inp["grad_ratio"]}}


def fine_detail(img: np.ndarray, sigma: float) -> np.ndarray:
    """What a Gaussian blur of ``sigma`` px removes: ``img − G_σ * img`` (float32)."""
    return img - cv2.GaussianBlur(img, (0, 0), sigma)


def unsharp(out: np.ndarray, gt: np.ndarray, sigma: float, amount: float) -> np.ndarray:
    """Unsharp mask: ``out + amount · (out − G_σ * out)`` (``gt`` unused)."""
    return out + amount * fine_detail(out, sigma)


def oracle(out: np.ndarray, gt: np.ndarray, shift: int, beta: float) -> np.ndarray:
    """``out`` with ``beta`` of its fine detail swapped for the GT's, moved ``shift`` px right and down."""
    sigma = ORACLE["sigma"]
    return out + beta * (np.roll(fine_detail(gt, sigma), (shift, shift), axis=(0, 1)) - fine_detail(out, sigma))


def edited_point(pairs: list[tuple[np.ndarray, np.ndarray]], edit: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> dict:
    """Mean PSNR, SSIM and detail against the GT of ``edit(out, gt)`` (float32, rounded to 8 bits)."""
    return mean_scores([(edit(out.astype(np.float32), gt.astype(np.float32)), gt) for out, gt in pairs])


def mean_scores(pairs: list[tuple[np.ndarray, np.ndarray]]) -> dict:
    """Mean PSNR, SSIM and detail of float images (rounded to 8 bits) against their 8-bit GTs."""
    scores = {"psnr": [], "ssim": [], "detail": []}
    for img, gt in pairs:
        img = np.clip(img, 0, 255).round().astype(np.uint8)
        for name, fn in (("psnr", psnr), ("ssim", ssim), ("detail", grad_ratio)):
            scores[name].append(fn(img, gt))
    return {name: float(np.mean(values)) for name, values in scores.items()}


def baseline_points(label: str, out: Path) -> list[dict]:
    """The unsharp-mask and oracle edits of the restorations in ``out`` (module docstring), each a point
    with its ``family`` (one curve in the plot), then the sampling-limit point of its GTs."""
    gts = {path.stem: load_bgr8(path) for path in (out / "gt").iterdir()}
    pairs = [(load_bgr8(path), gts[path.stem])
             for path in sorted((out / "model" / "restored_imgs").iterdir()) if path.stem in gts]
    amounts, betas = (", ".join(f"{v:g}" for v in grid[key]) for grid, key in ((UNSHARP, "amount"), (ORACLE, "beta")))
    points = []
    for sigma in UNSHARP["sigma"]:
        for amount in UNSHARP["amount"]:
            points.append({"family": f"{label} + unsharp mask σ {sigma:g} px, a {amounts}", "sigma": sigma, "amount": amount,
                           **edited_point(pairs, partial(unsharp, sigma=sigma, amount=amount))})
    for shift in ORACLE["shift"]:
        for beta in ORACLE["beta"]:
            points.append({"family": f"oracle: the GT's fine detail moved {np.hypot(shift, shift):.1f} px, β {betas}",
                           "shift": shift, "beta": beta, **edited_point(pairs, partial(oracle, shift=shift, beta=beta))})
    return points + [sampling_limit_point(out, gts)]


def sampling_limit(gt: np.ndarray, scale: float) -> np.ndarray:
    """``gt`` down by ``scale`` (area) and back up (bicubic): what a ↓r input can hold of it."""
    small = max(1, round(gt.shape[1] / scale)), max(1, round(gt.shape[0] / scale))
    return cv2.resize(cv2.resize(gt, small, interpolation=cv2.INTER_AREA), gt.shape[1::-1], interpolation=cv2.INTER_CUBIC)


def sampling_limit_point(out: Path, gts: dict[str, np.ndarray]) -> dict:
    """Mean scores of every GT (``gts``: the GTs of ``out`` by name stem) at its face's sampling limit, r
    from ``out``'s LQ manifest (module docstring)."""
    scales = [(gts[Path(row["input"]).stem], float(row["scale"]))
              for row in csv.DictReader((out / "lq" / "manifest.csv").open())]
    return {"family": "the GT at the input's sampling rate (↓r ↑r, nothing else)", "limit": "sampling",
            **mean_scores([(sampling_limit(gt.astype(np.float32), scale), gt) for gt, scale in scales])}


def plot(runs: list[dict], baselines: list[dict], base: dict | None, path: Path) -> None:
    """Two panels, detail against the PSNR and the SSIM gain over the input, target box shaded; each
    baseline family a dashed curve from ``base``, the run it edits."""
    import matplotlib  # installed with facexlib (through filterpy)
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    inp = runs[0]["input"]
    families = list(dict.fromkeys(p["family"] for p in baselines))
    fig, axes = plt.subplots(1, 2, figsize=(11, 6.4), sharey=True)
    for ax, metric, unit in ((axes[0], "psnr", " (dB)"), (axes[1], "ssim", "")):
        gains = [r[metric] - inp[metric] for r in runs + baselines] + [0.0, 2 * TARGET[metric]]
        lo, hi = min(gains), max(gains)
        lo, hi = lo - 0.08 * (hi - lo), hi + 0.08 * (hi - lo)
        ax.fill_between([TARGET[metric], hi], *TARGET["detail"], color="tab:green", alpha=0.15,
                        label="issue 12's target")
        ax.scatter([0], [inp["detail"]], marker="s", color="black", label="input")
        for kind, style, cmap in (("sigma", "--", "Greys"), ("shift", ":", "winter")):  # unsharp masks, the oracle
            kin = [f for f in families if any(kind in p for p in baselines if p["family"] == f)]
            for i, family in enumerate(kin):
                curve = [base] + [p for p in baselines if p["family"] == family]
                ax.plot([p[metric] - inp[metric] for p in curve], [p["detail"] for p in curve], style, marker=".",
                        color=plt.get_cmap(cmap)(0.45 + 0.5 * i / max(len(kin) - 1, 1)), label=family)
        for p in (p for p in baselines if "limit" in p):
            ax.scatter([p[metric] - inp[metric]], [p["detail"]], s=90, marker="*", color="goldenrod", zorder=3,
                       label=p["family"])
        for r, marker in zip(runs, "ovD^<>pP*hX" * 3):
            ax.scatter([r[metric] - inp[metric]], [r["detail"]], s=36, marker=marker, zorder=3, label=r["label"])
        ax.set_xlim(lo, hi)
        ax.set_xlabel(f"{metric.upper()} gain over the input{unit}")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("detail (mean Sobel gradient ÷ the GT's)")
    axes[0].set_ylim(0.3, 1.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7, loc="lower center", ncol=3, frameon=False)
    fig.suptitle(f"{len(runs)} checkpoints on the held-out faces (scripts/eval_heldout.sh): detail against fidelity",
                 fontsize=10)
    fig.tight_layout(rect=(0, 0.2, 1, 1))
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="eval_heldout.sh folders, each OUT or LABEL=OUT")
    parser.add_argument("--baselines", metavar="[LABEL=]OUT",
                        help="edit this folder's restorations (unsharp mask, the oracle) and bound its GTs by "
                             "the input's sampling rate (module docstring)")
    parser.add_argument("-o", "--output", type=Path, default=Path("docs/heldout_frontier.png"))
    args = parser.parse_args()
    runs = [run_point(*labelled(arg)) for arg in args.runs]
    base, baselines = None, []
    if args.baselines:
        label, folder = labelled(args.baselines)
        base, baselines = run_point(label, folder), baseline_points(label, folder)
    for point in runs + baselines:
        print(json.dumps({k: v for k, v in point.items() if k != "input"}))
    plot(runs, baselines, base, args.output)


if __name__ == "__main__":
    main()
