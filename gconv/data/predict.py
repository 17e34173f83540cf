r"""Predictions for molecules given as SMILES, in the targets' original units.

:func:`predict_smiles` is the whole inference path of a molecule model: featurise
(:func:`gconv.data.featurize`), batch, run the model in eval mode, undo the target
:class:`~gconv.data.Standardizer`. It takes the model as an argument, so :mod:`gconv.data`
still imports no model; a molecule command line builds on it.

Example::

    >>> predict_smiles(model, ["CCO", "c1ccccc1O"], standardizer=standardizer)
    tensor([[5.1234], [6.0321]])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from gconv._utils import evaluating, module_device
from gconv.data.cache import featurize
from gconv.data.scaling import Standardizer

__all__ = ["predict_smiles"]


@torch.no_grad()
def predict_smiles(
    model: torch.nn.Module,
    smiles: str | Sequence[str],
    standardizer: Standardizer | None = None,
    device: str | torch.device | None = None,
    batch_size: int = 256,
) -> Tensor:
    r"""Predicts properties of molecules given as SMILES, in the targets' original units.

    Args:
        model (torch.nn.Module): A graph model, ``model(batch) -> [num_graphs, T]``.
        smiles (str or Sequence[str]): One SMILES or a list of them.
        standardizer (Standardizer, optional): The one the model was trained with; its
            :meth:`~Standardizer.inverse_transform` is applied to the outputs.
            (default: :obj:`None`)
        device (str or torch.device, optional): Where to run the model. (default: the
            device of the model's parameters)
        batch_size (int, optional): Molecules per forward pass. (default: :obj:`256`)

    Returns:
        Tensor ``[len(smiles), T]`` on the CPU, in input order.

    Raises:
        ValueError: naming the position and the string of the first SMILES that fails.
    """
    from torch_geometric.loader import DataLoader

    smiles = [smiles] if isinstance(smiles, str) else list(smiles)
    graphs = featurize(smiles, on_error="raise").graphs
    if device is None:
        device = module_device(model)
    with evaluating(model):  # every module's own train/eval flag comes back afterwards
        outputs = [
            model(batch.to(device, non_blocking=True)).float()
            for batch in DataLoader(graphs, batch_size=batch_size, shuffle=False)
        ]
    # one device-to-host copy at the end, not one per batch
    prediction = torch.cat(outputs).cpu() if outputs else torch.empty(0)
    return standardizer.inverse_transform(prediction) if standardizer is not None else prediction
