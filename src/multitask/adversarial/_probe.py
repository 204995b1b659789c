"""How much task identity the shared features still hold: a fresh discriminator trained after the fact."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from multitask.adversarial._discriminator import TaskDiscriminator
from multitask.errors import ConfigError, DataError
from multitask.models import MultiTaskModel

if TYPE_CHECKING:  # data sits above this package (imports point down)
    from multitask.data import ArrayDataset


@torch.no_grad()
def shared_features(
    model: MultiTaskModel, data: Mapping[str, ArrayDataset], batch_size: int = 4096
) -> tuple[Tensor, Tensor]:
    """The model's shared features of every sample of ``{task: dataset}``, and each sample's task index.

    Returns:
        ``features [N, d]`` (float32, on CPU) and ``task_ids [N]``, task indices in ``model.task_names`` order.

    Raises:
        ConfigError: The model does not expose shared features (`MultiTaskModel.shared_features`).
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    parts: list[Tensor] = []
    ids: list[Tensor] = []
    try:
        for name, dataset in data.items():
            if name not in model.task_names:
                raise DataError(f"data for unknown task {name!r}; the model's tasks are {list(model.task_names)}")
            for start in range(0, len(dataset), batch_size):
                batch = dataset[slice(start, start + batch_size)]
                model({key: value.to(device) for key, value in batch.items()}, [name])
                features = model.shared_features()
                if features is None:
                    raise ConfigError(f"{type(model).__name__} does not expose its shared features")
                parts.append(features.reshape(features.shape[0], -1).float().cpu())
                ids.append(torch.full((features.shape[0],), model.task_names.index(name), dtype=torch.long))
    finally:
        model.train(was_training)
    return torch.cat(parts), torch.cat(ids)


def probe_task_accuracy(
    model: MultiTaskModel,
    train: Mapping[str, ArrayDataset],
    test: Mapping[str, ArrayDataset],
    *,
    hidden: Sequence[int] = (64,),
    epochs: int = 200,
    lr: float = 1e-2,
    seed: int = 0,
) -> float:
    """Balanced accuracy of a fresh task discriminator trained on the frozen shared features.

    A discriminator (`TaskDiscriminator` with ``hidden`` layers) is trained full-batch with Adam
    for ``epochs`` epochs on the shared features of ``train`` (standardised with the training
    statistics; classes weighted by inverse frequency) and scored on ``test``: the mean over tasks
    of the fraction of that task's samples it recognises. Chance is ``1/T``; a value near 1 means
    the shared space still tells the tasks apart, whatever the adversary during training achieved
    (adversarial training can hide task identity from its own discriminator while a new one still
    finds it: Elazar & Goldberg, "Adversarial Removal of Demographic Attributes from Text Data",
    EMNLP 2018).

    Args:
        model: A trained model exposing `MultiTaskModel.shared_features`.
        train: ``{task: dataset}`` to fit the probe on.
        test: ``{task: dataset}`` to score it on (every task present).
        hidden: The probe's hidden layers (``()``: a linear probe).
        epochs: Full-batch training epochs.
        lr: Adam's learning rate.
        seed: Seeds the probe's initial weights (the global RNG is left untouched).
    """
    if epochs <= 0:
        raise ConfigError(f"epochs must be positive; got {epochs}")
    num_tasks = len(model.task_names)
    missing = [name for name in model.task_names if name not in test or name not in train]
    if missing:
        raise DataError(f"the probe needs train and test data for every task; missing {missing}")
    x_train, y_train = shared_features(model, train)
    x_test, y_test = shared_features(model, test)
    mean, std = x_train.mean(dim=0), x_train.std(dim=0).clamp(min=1e-6)
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    counts = torch.bincount(y_train, minlength=num_tasks).float()
    class_weights = counts.sum() / (num_tasks * counts.clamp(min=1))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        probe = TaskDiscriminator(x_train.shape[1], num_tasks, hidden)
    optimizer = torch.optim.Adam(probe.parameters(), lr=lr)
    with torch.enable_grad():
        for _ in range(epochs):
            optimizer.zero_grad()
            F.cross_entropy(probe(x_train), y_train, weight=class_weights).backward()  # type: ignore[no-untyped-call]
            optimizer.step()
    with torch.no_grad():
        predicted = probe(x_test).argmax(dim=1)
    recalls = [(predicted[y_test == t] == t).float().mean() for t in range(num_tasks)]
    return float(torch.stack(recalls).mean())
