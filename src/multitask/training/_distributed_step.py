"""What the Trainer does differently when it runs in several processes: shards, global losses, reductions.

Exactness rests on one identity. Each task's loss is a mean over its labelled entries, so the loss
of the global batch (the union of the processes' shards) is ``L_t = Σ_r S_rt / Σ_r n_rt`` with
``S_rt`` the sum of process r's entry losses and ``n_rt`` its count. Each process therefore
back-propagates its *share* ``ℓ_rt = L_rt · n_rt / N_t`` (``L_rt`` its local mean, ``N_t = Σ_r n_rt``),
and ``Σ_r ℓ_rt = L_t``: summing gradients over the processes gives the gradients of the global batch,
for any linear use of them (the plain backward, each row of the Jacobian). What the strategy sees as
*values* (loss weighting, its state, the logs) are the global ``L_t`` themselves: the loss vector it
gets is ``(ℓ_r − ℓ_r.detach()) + L``, whose value is exactly ``L`` on every process and whose
gradient is the local share's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from multitask.data import Step
from multitask.errors import DistributedError
from multitask.training._view import TrainerView
from multitask.training.distributed import Distributed

if TYPE_CHECKING:
    from multitask.training._data import TaskData

Collected = list[tuple[int, str, tuple[Tensor, Tensor, Tensor]]]


class DistributedStep:
    """The Trainer's multi-process helpers (one per Trainer; all processes call them in the same order).

    Args:
        distributed: The process group.
        model: The model; its trainable parameters' gradients are the ones summed over processes
            (the strategy's own parameters, e.g. uncertainty weighting's, get the same gradient on
            every process, from the global loss values, and are not communicated).
        seed: The run's seed (dropout masks of process r at step k are drawn from ``(seed, r, k)``).
    """

    def __init__(self, distributed: Distributed, model: nn.Module, seed: int) -> None:
        self.distributed = distributed
        self.model = model
        self.seed = seed
        self.model_parameters = [p for p in model.parameters() if p.requires_grad]  # unique: parameters() dedups

    # ------------------------------------------------------------------ data
    def shard(self, steps: Iterator[Step]) -> Iterator[Step]:
        """Rows ``rank::world_size`` of every batch of every step: the shards' union is the one-process batch."""
        rank, world = self.distributed.rank, self.distributed.world_size
        for groups in steps:
            yield [({key: value[rank::world] for key, value in batch.items()}, names) for batch, names in groups]

    @contextlib.contextmanager
    def forward_rng(self, step: int, device: torch.device) -> Iterator[None]:
        """Run the forward pass on a generator of its own, seeded by ``(seed, rank, step)``.

        The global generator then advances only in the strategy (random weights, PCGrad's task
        order, ...), identically on every process, whatever each process's dropout draws.
        """
        devices = [device] if device.type == "cuda" else []
        seed = ((self.seed * 1_000_003 + step) * 65_537 + self.distributed.rank) % (2**63)
        with torch.random.fork_rng(devices=devices, device_type="cuda"):
            torch.default_generator.manual_seed(seed)
            if device.type == "cuda":
                with torch.cuda.device(device):
                    torch.cuda.manual_seed(seed)
            yield

    def all_reduce(self, tensor: Tensor) -> Tensor:
        """The sum over processes of a tensor a weighting computes (GradNorm's per-task gradients)."""
        return self.distributed.all_reduce(tensor, "weighting")

    # ------------------------------------------------------------------ losses
    def global_losses(
        self, losses: Tensor, counts: Mapping[str, int], task_names: Sequence[str]
    ) -> tuple[Tensor, Tensor, dict[str, int]]:
        """The loss vector to use, the global loss values (float64, CPU) and the global label counts.

        One all-reduce of ``2T`` float64 numbers (each task's sum of entry losses and its count).
        The returned vector's value is the global loss ``L`` on every process and its gradient is
        that of this process's share ``ℓ_r`` (see the module docstring). It always requires grad,
        so that every process takes the same branches (a process may hold no label at all).
        """
        local_counts = torch.tensor([float(counts.get(name, 0)) for name in task_names], dtype=torch.float64)
        sums = losses.detach().double().cpu() * local_counts
        reduced = self.distributed.all_reduce(torch.cat([sums, local_counts]), "losses").cpu()
        totals, global_counts = reduced[: len(task_names)], reduced[len(task_names) :]
        values = torch.where(global_counts > 0, totals / global_counts.clamp(min=1), torch.zeros_like(totals))
        shares = (local_counts / global_counts.clamp(min=1)).to(losses)
        local = losses * shares
        vector = (local - local.detach()) + values.to(losses)
        if not vector.requires_grad:  # no label here for any task: a zero-gradient leaf keeps the graph's shape
            vector = vector + torch.zeros_like(vector, requires_grad=True)
        return vector, values, {name: round(float(c)) for name, c in zip(task_names, global_counts, strict=True)}

    # ------------------------------------------------------------------ checks and state
    def start(self, trainer: TrainerView, train: TaskData, val: TaskData | None, num_steps: int | None) -> None:
        """At the start of `fit`: check that every process runs the same set-up, then copy rank 0's weights.

        Raises:
            DistributedError: Processes differ (the message names the setting and the ranks).
        """

        def sizes(data: TaskData | None) -> dict[str, int | None] | None:
            if data is None:
                return None
            return {name: data.size_of(name) for name in trainer.task_names if data.dataset_for(name) is not None}

        settings: dict[str, Any] = {
            "tasks": list(trainer.task_names),
            "parameter shapes": [tuple(p.shape) for p in trainer.model.parameters()],
            "strategy": type(trainer.strategy.weighting).__name__
            + ("+" + type(trainer.strategy.aggregation).__name__ if trainer.strategy.aggregation else "")
            + f"/{trainer.strategy.mode}",
            "training data sizes": sizes(train),
            "validation data sizes": sizes(val),
            "steps per epoch": num_steps,
            "seed": trainer.seed,
            "batch_size": trainer.batch_size,
            "max_epochs": trainer.max_epochs,
        }
        everyone = self.distributed.all_gather_object(settings)
        for rank, other in enumerate(everyone):
            for key, value in settings.items():
                if other.get(key) != value:
                    raise DistributedError(
                        f"process {rank} runs with {key} = {other.get(key)!r} but process {self.distributed.rank} "
                        f"with {value!r}: every process must build the same model, strategy, data and settings"
                    )
        self.distributed.broadcast_tensors(_floating_state(trainer.model) + _floating_state(trainer.strategy))

    def synchronise(self, epoch: int, modules: Sequence[nn.Module]) -> None:
        """At the end of an epoch: rank 0's floating buffers (e.g. batch-norm statistics) everywhere, then a check.

        The check compares each parameter's float64 sum across processes: they must agree
        bit for bit, since every process applies the same update.

        Raises:
            DistributedError: The processes' parameters differ.
        """
        buffers = [b for m in modules for b in m.buffers() if b.is_floating_point()]
        if buffers:
            self.distributed.broadcast_tensors(buffers)
        names = [name for m in modules for name, _ in m.named_parameters()]
        sums = [float(p.detach().double().sum()) for m in modules for p in m.parameters()]
        everyone = self.distributed.all_gather_object(sums)
        for rank, other in enumerate(everyone):
            different = [name for name, a, b in zip(names, sums, other, strict=True) if a != b and a == a]
            if different:
                raise DistributedError(
                    f"after epoch {epoch + 1} the parameters of process {rank} differ from those of process "
                    f"{self.distributed.rank} (first: {different[0]}): something in the step is not the same on every "
                    "process (randomness drawn on one process only, e.g. in a callback?)"
                )

    def gather(self, collected: Collected) -> Collected:
        """Every process's evaluated batches, in batch order (so the result is the one-process result)."""
        everyone = self.distributed.all_gather_object(collected)
        merged = [item for part in everyone for item in part]
        merged.sort(key=lambda item: item[0])
        return merged


def _floating_state(module: nn.Module) -> list[Tensor]:
    return [t for t in module.state_dict(keep_vars=True).values() if isinstance(t, Tensor) and t.is_floating_point()]
