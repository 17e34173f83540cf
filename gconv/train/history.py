"""Per-epoch training history and its train / validation curves."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from matplotlib.figure import Figure

__all__ = ["History", "plot_history"]


class History:
    """The records of a run, one dict per epoch (``epoch``, ``train_loss``, ``val_loss``,
    ``train_<metric>``, ``val_<metric>``, ``lr``, ``seconds``).

    ``history["val_loss"]`` is the list of that value over the epochs that have it.
    """

    def __init__(self, epochs: Sequence[dict[str, float]] | None = None) -> None:
        self.epochs: list[dict[str, float]] = [dict(e) for e in (epochs or [])]

    def append(self, record: dict[str, float]) -> None:
        self.epochs.append(dict(record))

    def __getitem__(self, key: str) -> list[float]:
        values = [e[key] for e in self.epochs if key in e]
        if not values and self.epochs:
            raise KeyError(f"history has no {key!r}; it records {sorted(self.keys())}")
        return values

    def keys(self) -> set[str]:
        return {k for e in self.epochs for k in e}

    def __len__(self) -> int:
        return len(self.epochs)

    def __iter__(self) -> Iterator[dict[str, float]]:
        return iter(self.epochs)

    @property
    def last(self) -> dict[str, float]:
        return self.epochs[-1] if self.epochs else {}

    def __repr__(self) -> str:
        return f"History(epochs={len(self)}, keys={sorted(self.keys())})"

    def plot(self, path: str | Path | None = None) -> Figure:
        return plot_history(self, path=path)


def plot_history(
    history: History, metrics: Sequence[str] | None = None, path: str | Path | None = None
) -> Figure:
    """Train / validation curves, one panel for the loss and one per metric.

    Args:
        history (History): what :meth:`Trainer.fit` returned.
        metrics (sequence of str, optional): base names to plot, e.g. ``("loss", "accuracy")``.
            (default: :obj:`None`, every ``train_*`` value recorded)
        path (str or Path, optional): also save the figure there as PNG. (default: :obj:`None`)
    """
    keys = history.keys()
    if metrics is None:
        metrics = sorted(k.removeprefix("train_") for k in keys if k.startswith("train_"))
        metrics = sorted(metrics, key=lambda m: (m != "loss", m))
    if not metrics:
        raise ValueError("history has no train_* values to plot")
    fig = Figure(figsize=(4.2 * len(metrics), 3.4), layout="constrained")
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    epochs = [e["epoch"] for e in history]
    for ax, name in zip(axes, metrics, strict=True):
        for split, style in (("train", "-o"), ("val", "-s")):
            key = f"{split}_{name}"
            if key in keys:
                xs = [e["epoch"] for e in history if key in e]
                ax.plot(xs, history[key], style, ms=3, label=split)
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend()
        if epochs:
            ax.set_xlim(min(epochs) - 0.2, max(epochs) + 0.2)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
    return fig
