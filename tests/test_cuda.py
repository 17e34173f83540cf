"""The CUDA path: mixed precision, exact resume, device-resident data, grid and graph layers, CAMs.

Every test here is marked ``cuda`` and skipped where ``torch.cuda.is_available()`` is false, so the
default suite on a CPU machine reports them as skipped, never as passed. On a GPU machine
``python -m pytest -q -m cuda`` (or ``benchmarks/gpu_check.sh``) runs them. Each compares the GPU
result with the CPU's or with an analytic answer, so a silent fallback to the CPU or a wrong
kernel fails.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch_geometric.data import Batch, Data
from torch_geometric.loader import DataLoader as GraphLoader
from torch_geometric.nn import GCNConv as PyGGCNConv

from gconv.data import TensorLoader
from gconv.data.augment import RandomShift
from gconv.data.grid import grid_graph, images_to_nodes, nodes_to_images
from gconv.explain import CAM, GradCAM
from gconv.layers import GCNConv
from gconv.layers.grid import GridConv
from gconv.models import CNN, GNN
from gconv.train import Trainer, seed_everything

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

DEVICE = torch.device("cuda")


def digits_like(n: int = 256, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two classes of 12x12 images: a bright horizontal or vertical bar plus noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = 0.3 * torch.rand(n, 1, 12, 12, generator=g)
    x[y == 0, :, 5:7, 2:10] += 1.0  # horizontal bar
    x[y == 1, :, 2:10, 5:7] += 1.0  # vertical bar
    return x, y


def small_cnn(dropout: float = 0.0) -> CNN:
    return CNN(
        in_shape=(1, 12, 12), num_classes=2, channels=(8, 16), head_hidden=(16,), dropout=dropout
    )


def params(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten().float().cpu() for p in model.parameters()])


# --------------------------------------------------------------------------- Trainer + AMP
@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_trainer_learns_under_autocast(amp):
    if amp == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    x, y = digits_like()
    seed_everything(0)
    trainer = Trainer(small_cnn(), lr=3e-3, device=DEVICE, amp=amp, progress=False, seed=0)
    assert trainer.amp_dtype == {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]
    # fp16 needs loss scaling against gradient underflow; bf16 has fp32's range and does not
    assert trainer.scaler.is_enabled() == (amp == "fp16")
    seen_dtypes = set()
    hook = trainer.model.features[0].conv.register_forward_hook(
        lambda module, inputs, output: seen_dtypes.add(output.dtype)
    )
    history = trainer.fit(
        TensorLoader(x[:192], y[:192], batch_size=32, device=DEVICE, seed=0), epochs=6
    )
    hook.remove()
    assert seen_dtypes == {trainer.amp_dtype}  # the convolutions really ran in reduced precision
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())  # master weights
    assert next(trainer.model.parameters()).device.type == DEVICE.type
    assert history["train_loss"][-1] < history["train_loss"][0]
    result = trainer.evaluate(TensorLoader(x[192:], y[192:], shuffle=False, device=DEVICE))
    assert result["accuracy"] >= 0.9
    if amp == "fp16":
        assert trainer.scaler.get_scale() > 0 and torch.isfinite(params(trainer.model)).all()


def test_fp16_resume_restores_the_grad_scaler_and_continues_exactly(tmp_path):
    x, y = digits_like(128)

    def run(directory, epochs, resume=False):
        seed_everything(1)
        trainer = Trainer(
            small_cnn(dropout=0.3),  # dropout draws from the CUDA generator: resume restores it
            lr=3e-3,
            device=DEVICE,
            amp="fp16",
            checkpoint_dir=directory,
            progress=False,
            seed=0,
            scheduler=lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7),
        )
        loader = TensorLoader(x, y, batch_size=32, device=DEVICE, augment=RandomShift(1), seed=3)
        trainer.fit(loader, epochs=epochs, resume=resume)
        return trainer

    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    full = run(tmp_path / "full", 4)
    run(tmp_path / "cut", 2)
    resumed = run(tmp_path / "cut", 4, resume=True)
    assert resumed.epoch == 4
    assert resumed.scaler.get_scale() == full.scaler.get_scale()
    torch.testing.assert_close(params(resumed.model), params(full.model), rtol=0, atol=0)
    assert resumed.history["train_loss"] == pytest.approx(full.history["train_loss"])


def test_trainer_fits_pyg_batches_on_the_gpu():
    g = torch.Generator().manual_seed(0)
    graphs = []
    for _ in range(96):
        n = int(torch.randint(3, 10, (1,), generator=g))
        x = torch.randn(n, 4, generator=g)
        ring = torch.arange(n)
        edge_index = torch.stack(
            [torch.cat([ring, (ring + 1) % n]), torch.cat([(ring + 1) % n, ring])]
        )
        graphs.append(Data(x=x, edge_index=edge_index, y=x[:, :1].sum(0, keepdim=True)))
    seed_everything(0)
    model = GNN(4, 1, conv="gcn", hidden_channels=32, num_layers=2, readout="sum")
    trainer = Trainer(model, loss="mse", lr=1e-2, device=DEVICE, progress=False, seed=0)
    history = trainer.fit(GraphLoader(graphs, batch_size=32, shuffle=True), epochs=30)
    assert next(trainer.model.parameters()).device.type == DEVICE.type
    assert history["train_r2"][-1] > 0.8
    # the trained weights give the same predictions on the CPU
    batch = Batch.from_data_list(graphs[:16])
    trainer.model.eval()
    with torch.no_grad():
        on_gpu = trainer.model(batch.to(DEVICE)).cpu()
        on_cpu = trainer.model.cpu()(batch.cpu())
    torch.testing.assert_close(on_gpu, on_cpu, rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------------- data on the device
def test_tensor_loader_keeps_batches_on_the_gpu_in_the_cpu_order():
    x, y = digits_like(100)
    gpu = TensorLoader(x, y, batch_size=32, device=DEVICE, seed=5)
    cpu = TensorLoader(x, y, batch_size=32, seed=5)
    assert gpu.x.device.type == DEVICE.type and gpu.y.device.type == DEVICE.type
    for epoch in (0, 3):
        gpu.set_epoch(epoch)
        cpu.set_epoch(epoch)
        pairs = list(zip(gpu, cpu, strict=True))
        assert len(pairs) == 4
        for (xg, yg), (xc, yc) in pairs:
            assert xg.device.type == DEVICE.type and yg.device.type == DEVICE.type
            # the permutation is drawn on the CPU: the same samples in the same order
            torch.testing.assert_close(xg.cpu(), xc, rtol=0, atol=0)
            assert torch.equal(yg.cpu(), yc)


def test_augmentation_runs_on_the_gpu_and_is_seeded():
    x, y = digits_like(64)
    loader = TensorLoader(
        x, y, batch_size=64, shuffle=False, device=DEVICE, augment=RandomShift(2), seed=1
    )
    first = next(iter(loader))[0]
    again = next(iter(loader))[0]
    assert first.device.type == DEVICE.type
    torch.testing.assert_close(first, again, rtol=0, atol=0)  # a pure function of (seed, epoch)
    assert not torch.equal(first.cpu(), x)  # something moved
    # a shift keeps the pixel values: every shifted image's mass is at most the original's
    assert (first.sum((1, 2, 3)).cpu() <= x.sum((1, 2, 3)) + 1e-4).all()


# --------------------------------------------------------------------------- layers
def test_grid_conv_fast_path_and_message_passing_equal_conv2d_on_the_gpu():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 5, 3, padding=1).to(DEVICE)
    grid_conv = GridConv.from_conv2d(conv).to(DEVICE)
    images = torch.randn(4, 3, 9, 11, device=DEVICE)
    expected = conv(images)
    nodes = images_to_nodes(images)  # [B, H*W, C]
    fast = nodes_to_images(grid_conv(nodes, grid_size=(9, 11)), 9, 11)
    assert fast.device.type == DEVICE.type
    torch.testing.assert_close(fast, expected, rtol=1e-4, atol=1e-4)
    graph = grid_graph(9, 11, connectivity=8).to(DEVICE)
    slow = grid_conv(nodes, graph.edge_index, graph.edge_attr)  # message passing
    torch.testing.assert_close(nodes_to_images(slow, 9, 11), expected, rtol=1e-4, atol=1e-4)


def test_gcn_conv_equals_pyg_on_a_gpu_batch():
    torch.manual_seed(0)
    graphs = [
        Data(x=torch.randn(n, 6), edge_index=torch.randint(0, n, (2, 3 * n))) for n in (5, 8, 3)
    ]
    batch = Batch.from_data_list(graphs).to(DEVICE)
    ours, theirs = GCNConv(6, 7).to(DEVICE), PyGGCNConv(6, 7).to(DEVICE)
    with torch.no_grad():
        theirs.lin.weight.copy_(ours.lin.weight)
        theirs.bias.copy_(ours.bias)
    out = ours(batch.x, batch.edge_index)
    assert out.device.type == DEVICE.type
    torch.testing.assert_close(out, theirs(batch.x, batch.edge_index), rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- explanations
@pytest.mark.parametrize("method", [CAM, GradCAM])
def test_cam_maps_stay_on_the_gpu_and_equal_the_cpu_maps(method):
    torch.manual_seed(0)
    model = CNN(in_shape=(1, 16, 16), num_classes=3, channels=(4, 8), head="gap").eval()
    images = torch.rand(5, 1, 16, 16)
    with method(model) as explainer:
        on_cpu = explainer(images)
    model.to(DEVICE)
    with method(model) as explainer:
        on_gpu = explainer(images.to(DEVICE))
    assert on_gpu.device.type == DEVICE.type and on_gpu.shape == (5, 16, 16)
    torch.testing.assert_close(on_gpu.cpu(), on_cpu, rtol=1e-4, atol=1e-4)
