"""``compress``: a file (image or weight matrix) kept at low rank, with a report folder.

The logic of ``factorkit compress``; the command line only parses and prints.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from factorkit.decomposition._io import (
    is_image_path,
    read_matrix,
    write_image,
    write_matrix,
)
from factorkit.decomposition._low_rank import LowRank, low_rank, rank_sweep
from factorkit.exceptions import DataError

__all__ = ["compress", "write_report"]


def compress(
    path: str | Path,
    *,
    rank: int | None = None,
    energy: float | None = None,
    max_error: float | None = None,
    out: str | Path | None = None,
    report: str | Path | None = None,
    key: str | None = None,
) -> LowRank:
    """Read an image or a weight matrix, keep it at low rank, write the result.

    ``out``: ``.npz`` / ``.safetensors`` store the factors (``left``, ``right``: the file
    is the compressed form); an image suffix stores the reconstructed image. ``report``:
    a folder receiving ``report.md`` (the error and storage ratio over a range of ranks)
    and, with matplotlib, ``comparison.png`` (original beside reconstruction) and
    ``ranks.png``.
    """
    path = Path(path)
    X = read_matrix(path, key=key)
    image = is_image_path(path)
    if X.ndim != 2 and not image:
        raise DataError(
            f"{path}: holds an array of shape {X.shape}; compress needs a 2-D weight "
            "matrix (reshape it first, e.g. a conv kernel to (out, in*kh*kw))."
        )
    result = low_rank(X, rank=rank, energy=energy, max_error=max_error, image=image)
    if out is not None:
        out = Path(out)
        if is_image_path(out):
            if not image:
                raise DataError(f"{out}: an image output needs an image input; use .npz.")
            write_image(out, result.reconstruct())
        else:
            write_matrix(out, {"left": result.left, "right": result.right})
    if report is not None:
        write_report(Path(report), X, result, image, path.name)
    return result


def _sweep_ranks(shape: tuple, chosen: int) -> list[int]:
    limit = min(shape[0], shape[1])
    ranks = {1, chosen, limit // 2}
    k = 2
    while k < limit // 2:
        ranks.add(k)
        k *= 2
    return sorted(r for r in ranks if 1 <= r <= limit)


def write_report(folder: Path, X: np.ndarray, result: LowRank, image: bool, name: str) -> None:
    """report.md (+ figures when matplotlib is installed) for one compressed file."""
    folder.mkdir(parents=True, exist_ok=True)
    ranks = _sweep_ranks(X.shape, result.report.rank)
    sweep = rank_sweep(X, ranks, image=image)
    lines = [
        f"# Low-rank compression of {name}",
        "",
        f"Chosen: {result.report}",
        "",
        "| rank | storage ratio | relative error | energy kept |"
        + (" PSNR (dB) |" if image else ""),
        "|---:|---:|---:|---:|" + ("---:|" if image else ""),
    ]
    for r in sweep:
        row = f"| {r.rank} | {r.storage_ratio:.4f} | {r.relative_error:.4%} | {r.energy:.4%} |"
        lines.append(row + (f" {r.psnr:.2f} |" if image else ""))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # the plot extra is optional
        lines += ["", "(Install matplotlib, the `plot` extra, for the figures.)"]
    else:
        _figures(folder, X, result, image, sweep, plt)
        lines += ["", "![original and reconstruction](comparison.png)", "", "![ranks](ranks.png)"]
    (folder / "report.md").write_text("\n".join(lines) + "\n")


def _figures(folder, X, result, image, sweep, plt) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(10, 5))
    recon = result.reconstruct()
    for ax, data, title in (
        (axes[0], X, "original"),
        (axes[1], recon, f"rank {result.report.rank} ({result.report.storage_ratio:.1%})"),
    ):
        if image:
            ax.imshow(data, cmap="gray" if data.ndim == 2 else None, vmin=0)
        else:
            ax.imshow(data, cmap="RdBu_r", aspect="auto")
        ax.set_title(title)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(folder / "comparison.png", dpi=100)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([r.storage_ratio for r in sweep], [r.relative_error for r in sweep], "o-")
    for r in sweep:
        ax.annotate(str(r.rank), (r.storage_ratio, r.relative_error), fontsize=8)
    ax.set_xlabel("storage ratio k(m+n)/(mn)")
    ax.set_ylabel("relative error")
    fig.tight_layout()
    fig.savefig(folder / "ranks.png", dpi=100)
    plt.close(fig)
