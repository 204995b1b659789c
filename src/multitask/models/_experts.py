"""Checks and pieces shared by the mixture-of-experts models: tasks, input shapes, expert output sizes."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from multitask.errors import ConfigError, DataError, ShapeError
from multitask.tasks import Task


def column(batch: Mapping[str, Tensor], key: str) -> Tensor:
    """``batch[key]``, or a `DataError` that lists the batch's columns."""
    if key not in batch:
        raise DataError(f"batch has no input column {key!r}; columns: {sorted(batch)} (set input_key=...)")
    return batch[key]


def check_tasks(tasks: Sequence[Task], model: str) -> tuple[str, ...]:
    """The task names; at least two, unique (one task has nothing to share: use `HardSharing`)."""
    names = [task.name for task in tasks]
    if len(names) < 2:
        raise ConfigError(f"{model} needs at least two tasks; got {len(names)} (for one task use HardSharing)")
    if len(set(names)) != len(names):
        raise ConfigError(f"task names must be unique; got {names}")
    return tuple(names)


def check_count(model: str, **counts: int) -> None:
    """Each count must be a positive integer."""
    for name, value in counts.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{model}: {name} must be a positive integer; got {value!r}")


def as_shape(in_features: int | Sequence[int], model: str) -> tuple[int, ...]:
    """The shape of one input row, without the batch dimension."""
    shape = (in_features,) if isinstance(in_features, int) else tuple(in_features)
    if not shape or any(not isinstance(size, int) or size < 1 for size in shape):
        raise ConfigError(f"{model}: in_features must be a positive size or shape; got {in_features!r}")
    return shape


def output_size(module: nn.Module, shape: tuple[int, ...], what: str) -> int:
    """The feature size ``D`` of ``module``'s output ``[N, D]`` on an input row of ``shape`` (probed once)."""
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            output = module(torch.zeros(2, *shape))
    except Exception as error:  # the message must say which module failed on what input
        raise ConfigError(f"{what} fails on an input of shape [N, {', '.join(map(str, shape))}]: {error}") from error
    finally:
        module.train(was_training)
    if not isinstance(output, Tensor) or output.dim() != 2:
        found = tuple(output.shape) if isinstance(output, Tensor) else type(output).__name__
        raise ConfigError(f"{what} must return features [N, D]; it returned {found}")
    return int(output.shape[1])


def common_output_size(experts: Sequence[nn.Module], shape: tuple[int, ...], what: str) -> int:
    """The output size every expert shares; an error names the sizes when they differ."""
    if len(experts) == 0:
        raise ConfigError(f"{what}: needs at least one expert; got zero")
    sizes = [output_size(expert, shape, f"{what} expert {i}") for i, expert in enumerate(experts)]
    if len(set(sizes)) != 1:
        raise ConfigError(f"{what}: experts must all output the same size; got output sizes {sizes}")
    return sizes[0]


class GateInput:
    """Where the experts' and the gates' inputs come from in a batch, with their expected sizes.

    Args:
        input_key: Batch column of the experts' input.
        in_shape: Shape of one input row.
        gate_key: Batch column of the gates' input (None: the experts' input, flattened).
        gate_features: Size of the gates' input (needed with ``gate_key``; else ``prod(in_shape)``).
        model: The model's name, for messages.
    """

    def __init__(
        self,
        input_key: str,
        in_shape: tuple[int, ...],
        gate_key: str | None,
        gate_features: int | None,
        model: str,
    ) -> None:
        flat = math.prod(in_shape)
        if gate_key is None or gate_key == input_key:
            if gate_features is not None and gate_features != flat:
                raise ConfigError(
                    f"{model}: the gates read the input {input_key!r} of size {flat}, "
                    f"but gate_features={gate_features}; "
                    f"drop gate_features or name another column with gate_key"
                )
            gate_features = flat
        elif gate_features is None:
            raise ConfigError(f"{model}: gate_key={gate_key!r} needs gate_features (the size of that column)")
        if gate_features < 1:
            raise ConfigError(f"{model}: gate_features must be positive; got {gate_features}")
        self.input_key, self.in_shape = input_key, in_shape
        self.gate_key = gate_key if gate_key is not None else input_key
        self.gate_features = gate_features

    def inputs(self, batch: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        """The experts' input ``[N, *in_shape]`` and the gates' input ``[N, gate_features]``."""
        for key in (self.input_key, self.gate_key):
            if key not in batch:
                raise DataError(f"batch has no input column {key!r}; columns: {sorted(batch)} (set input_key/gate_key)")
        x = batch[self.input_key]
        if tuple(x.shape[1:]) != self.in_shape:
            raise ShapeError(
                f"input {self.input_key!r} has rows of shape {tuple(x.shape[1:])}, expected {self.in_shape}"
            )
        gate = batch[self.gate_key].flatten(1).float()
        if gate.shape[1] != self.gate_features:
            raise ShapeError(
                f"gate input {self.gate_key!r} has {gate.shape[1]} features per row, expected {self.gate_features}"
            )
        return x, gate


def mix(weights: Tensor, expert_outputs: Tensor) -> Tensor:
    """Σ_e weights[n, e] · expert_outputs[n, e, :]: ``[N, E]`` and ``[N, E, D]`` to ``[N, D]``."""
    return torch.einsum("ne,ned->nd", weights, expert_outputs)


def stack_outputs(outputs: Sequence[Tensor]) -> Tensor:
    """Expert outputs ``E × [N, D]`` stacked to ``[N, E, D]``."""
    return torch.stack(list(outputs), dim=1)
