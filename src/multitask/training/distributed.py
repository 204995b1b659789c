"""Multi-process training on ``torch.distributed`` (``torchrun``): the process group, counted reductions, clear errors.

A `Distributed` wraps the default process group the way the `Trainer` uses it. Every collective
goes through it, so that each one is counted (`bytes_by_kind`: what a step costs in
communication) and a failed one (a peer died, or stalled past the timeout) becomes a
`DistributedError` that says so, instead of a backend traceback or a hang.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

import torch
from torch import Tensor

from multitask.errors import ConfigError, DistributedError

T = TypeVar("T")

#: Seconds a collective may wait for the other processes before the run ends with `DistributedError`.
DEFAULT_TIMEOUT_S = 600.0
#: Environment variable that overrides `DEFAULT_TIMEOUT_S` (e.g. for ``multitask train --nproc``).
TIMEOUT_VARIABLE = "MULTITASK_DIST_TIMEOUT"


def _dist() -> Any:
    """``torch.distributed``, or a clear error on a PyTorch build without it."""
    import torch.distributed as dist

    if not dist.is_available():
        raise DistributedError("this PyTorch build has no torch.distributed; multi-process training needs it")
    return dist


def environment_world_size() -> int:
    """``WORLD_SIZE`` as ``torchrun`` sets it (1 when unset)."""
    value = os.environ.get("WORLD_SIZE", "1")
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"WORLD_SIZE must be an integer; got {value!r}") from None


def is_main_process() -> bool:
    """True on rank 0 of an initialised process group, and in a single-process run."""
    import torch.distributed as dist

    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def _timeout(timeout: float | None) -> float:
    if timeout is None:
        text = os.environ.get(TIMEOUT_VARIABLE)
        try:
            timeout = float(text) if text is not None else DEFAULT_TIMEOUT_S
        except ValueError:
            raise ConfigError(f"{TIMEOUT_VARIABLE} must be a number of seconds; got {text!r}") from None
    if not timeout > 0:
        raise ConfigError(f"the distributed timeout must be positive; got {timeout}")
    return float(timeout)


class Distributed:
    """The processes of one multi-process run, as the `Trainer` uses them.

    Use `init` (or `from_environment`, which the Trainer calls) rather than the constructor. The
    process group is PyTorch's default one: ``nccl`` when CUDA is available (one GPU per process,
    ``LOCAL_RANK``), else ``gloo``. Reductions run on `device` (the GPU for ``nccl``, the CPU
    for ``gloo``), tensors elsewhere are copied there and back.

    Attributes:
        rank: This process's rank, ``0 ≤ rank < world_size``.
        world_size: Number of processes.
        local_rank: Rank on this machine (``LOCAL_RANK``; picks the GPU).
        backend: ``"gloo"`` or ``"nccl"``.
        timeout: Seconds a collective waits for the others before the run fails (for a process
            group created before, the timeout it was created with applies).
        device: Where the reductions run (the GPU for ``nccl``, else the CPU).
        bytes_by_kind: Payload bytes all-reduced by this process so far, per kind (``"losses"``,
            ``"gradients"``, ``"jacobian"``, ``"gramian"``, ``"weighting"``, ``"logs"``).
        position: Where the run is (set by the Trainer, e.g. ``"epoch 2, step 5"``), for error messages.
    """

    def __init__(self, rank: int, world_size: int, local_rank: int, backend: str, timeout: float) -> None:
        self.rank, self.world_size, self.local_rank = rank, world_size, local_rank
        self.backend, self.timeout = backend, timeout
        self.device = torch.device("cuda", local_rank) if backend == "nccl" else torch.device("cpu")
        self.bytes_by_kind: dict[str, int] = {}
        self.position = "start-up"

    # ------------------------------------------------------------------ set-up
    @classmethod
    def init(
        cls,
        backend: str | None = None,
        *,
        init_method: str | None = None,
        rank: int | None = None,
        world_size: int | None = None,
        timeout: float | None = None,
    ) -> Distributed:
        """Join (or create) the default process group.

        Without arguments it reads what ``torchrun`` sets: ``RANK``, ``WORLD_SIZE``,
        ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``. When the group is already
        initialised (e.g. by the user's script), it is used as it is.

        Args:
            backend: ``"gloo"`` or ``"nccl"``; None: ``nccl`` when CUDA is available, else ``gloo``.
            init_method: Where the processes meet (``"env://"`` by default; ``"file:///path"`` or
                ``"tcp://host:port"`` with ``rank`` and ``world_size``).
            rank: This process's rank (default ``RANK``).
            world_size: Number of processes (default ``WORLD_SIZE``).
            timeout: Seconds a collective may wait; default ``$MULTITASK_DIST_TIMEOUT`` or 600.

        Raises:
            ConfigError: Missing or inconsistent settings (the message names the variable).
            DistributedError: The processes could not meet within the timeout.
        """
        dist = _dist()
        seconds = _timeout(timeout)
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if dist.is_initialized():
            group_backend = str(dist.get_backend())
            return cls(dist.get_rank(), dist.get_world_size(), local_rank, group_backend, seconds)
        backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
        if backend not in ("gloo", "nccl"):
            raise ConfigError(f"backend must be 'gloo' or 'nccl'; got {backend!r}")
        if backend == "nccl":
            if not torch.cuda.is_available():
                raise ConfigError("backend 'nccl' needs CUDA GPUs; use 'gloo' on CPUs")
            torch.cuda.set_device(local_rank)
        if init_method is None or init_method == "env://":
            needed = ["MASTER_ADDR", "MASTER_PORT"] + [
                name for name, value in (("RANK", rank), ("WORLD_SIZE", world_size)) if value is None
            ]
            missing = [name for name in needed if name not in os.environ]
            if missing:
                raise ConfigError(
                    f"multi-process training needs the environment variables {missing} (torchrun sets them): "
                    "launch with `torchrun --nproc_per_node N script.py` or `multitask train CONFIG --nproc N`"
                )
        try:
            dist.init_process_group(
                backend,
                init_method=init_method,
                rank=rank if rank is not None else -1,
                world_size=world_size if world_size is not None else -1,
                timeout=datetime.timedelta(seconds=seconds),
            )
        except (RuntimeError, ValueError) as error:  # DistNetworkError, DistStoreError, store timeouts
            raise DistributedError(
                f"the {backend} process group could not be set up within {seconds:g} s: {_first_line(error)}; "
                "check that every process was started, with the same MASTER_ADDR/MASTER_PORT and WORLD_SIZE"
            ) from error
        return cls(dist.get_rank(), dist.get_world_size(), local_rank, backend, seconds)

    @classmethod
    def from_environment(cls) -> Distributed | None:
        """`init` when this process is one of several (an initialised group, or ``WORLD_SIZE > 1``); else None."""
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return cls.init() if dist.get_world_size() > 1 else None
        return cls.init() if environment_world_size() > 1 else None

    @classmethod
    def resolve(cls, distributed: bool | Distributed | None) -> Distributed | None:
        """The Trainer's ``distributed`` argument: None detects, True requires, False refuses a process group."""
        if isinstance(distributed, Distributed):
            return distributed
        if distributed is None:
            return cls.from_environment()
        if distributed is True:
            return cls.init()
        if distributed is False:
            return None
        raise ConfigError(f"distributed must be True, False, None or a Distributed; got {distributed!r}")

    def close(self) -> None:
        """Leave the process group (call once, at the end of the script; the Trainer never does)."""
        dist = _dist()
        if dist.is_initialized():
            dist.destroy_process_group()

    def training_device(self, requested: str | torch.device | None = None) -> torch.device:
        """Where this process trains: GPU ``LOCAL_RANK`` for ``None`` (when CUDA is available) and for ``"cuda"``.

        An explicit device (``"cpu"``, ``"cuda:1"``) is kept as it is.
        """
        if requested is None:
            return torch.device("cuda", self.local_rank) if torch.cuda.is_available() else torch.device("cpu")
        device = torch.device(requested)
        return torch.device("cuda", self.local_rank) if device == torch.device("cuda") else device

    @property
    def is_main(self) -> bool:
        """True on rank 0: the process that writes files and prints."""
        return self.rank == 0

    def __repr__(self) -> str:
        return f"Distributed(rank={self.rank}, world_size={self.world_size}, backend={self.backend!r})"

    # ------------------------------------------------------------------ collectives
    @contextlib.contextmanager
    def _collective(self, what: str) -> Iterator[None]:
        """Turn a failed collective into a `DistributedError` that says what happened and what to do."""
        try:
            yield
        except DistributedError:
            raise
        except RuntimeError as error:  # DistBackendError, DistNetworkError, gloo/nccl timeouts
            raise DistributedError(
                f"process {self.rank} of {self.world_size}: {what} failed at {self.position}: {_first_line(error)}. "
                f"Another process has most likely died, or stalled for more than {self.timeout:g} s (see its "
                "output); this run cannot go on. Restart it with `--resume` (Trainer.fit(resume=True)) to "
                "continue from the last checkpoint"
            ) from error

    def all_reduce(self, tensor: Tensor, kind: str) -> Tensor:
        """The sum of ``tensor`` over the processes (same shape, dtype and device as ``tensor``)."""
        dist = _dist()
        buffer = tensor.to(self.device).contiguous()
        self.bytes_by_kind[kind] = self.bytes_by_kind.get(kind, 0) + buffer.numel() * buffer.element_size()
        with self._collective(f"all-reduce of the {kind}"):
            dist.all_reduce(buffer)
        return buffer.to(tensor.device)

    def sum_tensors(self, tensors: Sequence[Tensor | None], like: Sequence[Tensor], kind: str) -> list[Tensor | None]:
        """Sums over the processes of several tensors, in one all-reduce per dtype.

        ``tensors[i]`` may be None (a parameter without gradient here); it counts as zeros shaped
        like ``like[i]``, and the result is None only where it is None on every process, so that
        a parameter no process computed a gradient for keeps ``grad = None`` (as on one process).
        """
        result: list[Tensor | None] = [None] * len(like)
        groups: dict[torch.dtype, list[int]] = {}
        for index, reference in enumerate(like):
            groups.setdefault(reference.dtype, []).append(index)
        for dtype, indices in groups.items():
            device = like[indices[0]].device
            pieces = []
            for i in indices:
                value = tensors[i]
                pieces.append(
                    torch.zeros(like[i].numel(), dtype=dtype, device=device)
                    if value is None
                    else value.detach().reshape(-1).to(device, dtype)
                )
            flags = torch.tensor([tensors[i] is not None for i in indices], dtype=dtype, device=device)
            total = self.all_reduce(torch.cat([*pieces, flags]), kind)
            present = total[-len(indices) :].tolist()
            offset = 0
            for i, count in zip(indices, present, strict=True):
                size = like[i].numel()
                if count > 0:
                    result[i] = total[offset : offset + size].view(like[i].shape)
                offset += size
        return result

    def sum_gradients(self, parameters: Sequence[Tensor], kind: str = "gradients") -> None:
        """Replace each parameter's ``.grad`` by its sum over the processes (one flat all-reduce)."""
        if not parameters:
            return
        summed = self.sum_tensors([p.grad for p in parameters], parameters, kind)
        for parameter, grad in zip(parameters, summed, strict=True):
            parameter.grad = grad.to(parameter.dtype) if grad is not None else None

    def broadcast_tensors(self, tensors: Sequence[Tensor]) -> None:
        """Overwrite ``tensors`` with rank 0's values (floating-point tensors, one broadcast per dtype)."""
        dist = _dist()
        groups: dict[torch.dtype, list[Tensor]] = {}
        for tensor in tensors:
            groups.setdefault(tensor.dtype, []).append(tensor)
        for group in groups.values():
            flat = torch.cat([t.detach().reshape(-1) for t in group]).to(self.device)
            with self._collective("broadcast of the initial weights"):
                dist.broadcast(flat, src=0)
            offset = 0
            with torch.no_grad():
                for tensor in group:
                    tensor.copy_(flat[offset : offset + tensor.numel()].view_as(tensor))
                    offset += tensor.numel()

    def broadcast_object(self, value: T | None) -> T:
        """Rank 0's ``value`` on every process (pickled; for small objects and checkpoints)."""
        dist = _dist()
        box: list[Any] = [value if self.is_main else None]
        with self._collective("broadcast from rank 0"):
            dist.broadcast_object_list(box, src=0)
        result: T = box[0]
        return result

    def all_gather_object(self, value: T) -> list[T]:
        """Every process's ``value``, in rank order (pickled)."""
        dist = _dist()
        gathered: list[Any] = [None] * self.world_size
        with self._collective("all-gather"):
            dist.all_gather_object(gathered, value)
        return gathered

    def barrier(self) -> None:
        """Wait until every process gets here."""
        dist = _dist()
        with self._collective("barrier"):
            if self.backend == "nccl":
                dist.barrier(device_ids=[self.local_rank])
            else:
                dist.barrier()

    def run_on_main(self, function: Any, *args: Any) -> Any:
        """``function(*args)`` on rank 0 only; its result, or its `MultitaskError`, on every process.

        For file-system work done once (creating a run folder): the other processes wait, and
        an error on rank 0 ends every process with the same message rather than a timeout.
        """
        from multitask.errors import MultitaskError

        outcome: tuple[bool, Any] = (True, None)
        if self.is_main:
            try:
                outcome = (True, function(*args))
            except MultitaskError as error:
                outcome = (False, error)
        shared: tuple[bool, Any] = self.broadcast_object(outcome)
        ok, value = shared
        if not ok:
            raise value
        return value


def torchrun_command(module_args: Sequence[str], nproc: int) -> list[str]:
    """The command that runs ``python -m MODULE ARGS`` in ``nproc`` processes on this machine with torchrun.

    ``--standalone`` makes torchrun pick a free local port for the rendezvous.
    """
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise ConfigError(f"--nproc must be a positive integer; got {nproc!r}")
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", *module_args]


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
