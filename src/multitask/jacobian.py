"""How per-task gradients are computed: the Jacobian ``[T, P]`` or its Gramian ``[T, T]``, batched or by a loop."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence

import torch
from torch import Tensor

from multitask.errors import ConfigError, ShapeError

_log = logging.getLogger("multitask")
_reported: set[str] = set()  # the default choices already reported in this process
_GRAMIAN_COLUMNS = 16_384  # columns per product when the Gramian is formed on a CPU (measured best of 2k-64k)


class JacobianEngine:
    r"""Computes the Jacobian ``J [T, P]`` of task losses ``[T]`` w.r.t. parameters, or ``G = J Jᵀ``.

    The "parameters" can be any tensors in the graph: the model's shared parameters, or its
    shared representation (the Trainer's representation mode, e.g. MGDA-UB).

    The rows come from one vectorised backward pass: ``torch.autograd.grad`` with
    ``is_grads_batched=True`` back-propagates the ``T`` one-hot cotangents at once (vmap over the
    backward graph), ``chunk_size`` of them at a time to bound memory (None: all ``T``), or from a
    loop of ``T`` ordinary ``autograd.grad`` calls. By default (``batched=None``) the engine picks
    the faster one for the device and reports the choice once (``logging``, logger ``"multitask"``):
    on CPUs the loop for graphs with convolutions (CNN, T = 10: 313 vs 451 ms per step) and the
    batched pass otherwise; the batched pass on accelerators. Some operations have
    no batching rule; then the engine warns once and switches, for the rest of its life, to the
    loop (same result).

    With a shared representation ``z`` through which every shared parameter reaches the losses
    (`pull_back`), the Jacobian is computed *features-first*: ``T`` small backward passes through
    the task heads give ``∂L_t/∂z`` (`feature_gradients`), then one pass through the trunk turns
    them into the rows ``∂L_t/∂θ = (∂z/∂θ)ᵀ ∂L_t/∂z``. The engine never changes an update, only
    what it costs (the rows agree to rounding).

    A parameter that a task's loss does not depend on gets a zero gradient; a task whose loss
    does not depend on any of the parameters gets a zero row and a warning (it then neither
    helps nor conflicts: most aggregators give it no say).

    Args:
        chunk_size: Tasks back-propagated per batched pass; None for all at once.
        batched: Use the batched pass (True), always loop over the tasks (False), or pick the
            faster one for the device (None, the default).
        update_by_backward: For `GramianAggregator` methods (`multitask.backward`): free the
            Jacobian's blocks as soon as the Gramian is formed and make the update by one more
            backward pass of ``Σ_t w'_t w_t L_t`` through the shared layers (the former
            ``Strategy(mode="gramian")``), instead of as ``w'ᵀ J`` from the kept blocks. Same update.
    """

    def __init__(
        self, chunk_size: int | None = None, *, batched: bool | None = None, update_by_backward: bool = False
    ) -> None:
        if chunk_size is not None and (
            isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1
        ):
            raise ConfigError(f"chunk_size must be a positive integer or None; got {chunk_size!r}")
        if batched is not None and not isinstance(batched, bool):
            raise ConfigError(f"batched must be True, False or None (the device's faster choice); got {batched!r}")
        self.chunk_size = chunk_size
        self.batched = batched
        self.update_by_backward = bool(update_by_backward)
        self.fallback_reason: str | None = None

    def __repr__(self) -> str:
        return (
            f"JacobianEngine(chunk_size={self.chunk_size}, batched={self.batched}, "
            f"update_by_backward={self.update_by_backward})"
        )

    def uses_batched(self, device: torch.device, roots: Sequence[Tensor] = ()) -> bool:
        """Whether per-task gradients on ``device`` come from the batched pass (a default choice is reported once).

        The default (``batched=None``): the batched pass on accelerators; on CPUs the loop when the
        autograd graph below ``roots`` holds a convolution (where vmap's backward is about 1.5×
        slower and holds ``T`` copies of the activation gradients), else the batched pass, which also
        spares the copy that stacks the loop's rows (MLP 512, T = 10: 35.8 vs 38.9 ms).
        """
        if self.batched is not None:
            return self.batched
        convolution = device.type == "cpu" and _has_convolution(roots)
        choice = device.type != "cpu" or not convolution
        key = f"{device.type}{' (convolutions)' if convolution else ''}"
        if key not in _reported:
            _reported.add(key)
            _log.info(
                "multitask: per-task gradients on %s by %s (the faster choice there; JacobianEngine(batched=...) "
                "overrides it)",
                key,
                "one batched (vmap) backward pass" if choice else "a loop of T backward passes",
            )
        return choice

    def gradients(
        self,
        losses: Tensor | Sequence[Tensor],
        parameters: Sequence[Tensor],
        *,
        check_unused: bool = True,
        batched: bool | None = None,
    ) -> list[Tensor]:
        """Per-parameter blocks ``[T, *p.shape]`` of the Jacobian (zero where a loss does not depend on ``p``).

        ``losses`` is the vector ``[T]``, or its ``T`` scalar entries before they were stacked: then
        the loop differentiates each on its own, and a task's backward pass does not run through
        the other tasks' heads (with a stacked vector each of the ``T`` passes carries zeros
        through all of them).
        The autograd graph is retained, so the caller can back-propagate through it once more.
        ``check_unused=False`` skips the scan for all-zero rows (one pass over ``[T, P]``) for a
        caller that finds them more cheaply, e.g. on the Gramian's diagonal (`warn_unused`).
        ``batched`` overrides the engine's setting for this call (e.g. False where each task's
        path to ``parameters`` is a small separate subgraph, as from a shared representation
        through the task heads: there ``T`` small backward passes cost less than vmap's overhead).
        """
        parts: list[Tensor] | None = None
        if not isinstance(losses, Tensor):
            parts = list(losses)
            if not parts or any(not isinstance(part, Tensor) or part.dim() != 0 for part in parts):
                raise ShapeError("losses must be a vector [num_tasks] or a non-empty list of scalar losses")
            losses = torch.stack(parts)
        if losses.dim() != 1 or losses.numel() == 0:
            raise ShapeError(f"losses must be a non-empty vector [num_tasks]; got shape {tuple(losses.shape)}")
        if not parameters:
            raise ConfigError("no shared parameters to differentiate: the model has none that require grad")
        num_tasks = losses.numel()
        if not losses.requires_grad:
            self.warn_unused(torch.ones(num_tasks, dtype=torch.bool))
            return [torch.zeros(num_tasks, *p.shape, dtype=p.dtype, device=p.device) for p in parameters]
        blocks = None
        use_batched = self.uses_batched(losses.device, [losses]) if batched is None else batched
        if use_batched and self.fallback_reason is None and num_tasks > 1:
            eye = torch.eye(num_tasks, dtype=losses.dtype, device=losses.device)
            blocks = self._try_batched([losses], parameters, [eye])
        if blocks is None:
            blocks = self._loop(parts if parts is not None else list(losses.unbind()), parameters)
        if check_unused:
            nonzero = torch.stack([b.reshape(num_tasks, -1).ne(0).any(dim=1) for b in blocks]).any(dim=0)
            self.warn_unused(~nonzero)
        return blocks

    def feature_gradients(self, losses: Tensor | Sequence[Tensor], features: Sequence[Tensor]) -> list[Tensor]:
        """Blocks ``[T, *z.shape]`` of ``∂ losses[t] / ∂ z`` for each representation ``z`` in ``features``.

        Each task's path from ``z`` to its loss is its head: a loop of ``T`` small backward passes
        costs less there than one vmapped pass (measured: 11 vs 26 ms, MLP 512, T = 10, CPU).
        """
        return self.gradients(losses, features, check_unused=False, batched=False)

    def pull_back(
        self, features: Sequence[Tensor], cotangents: Sequence[Tensor], parameters: Sequence[Tensor]
    ) -> list[Tensor]:
        """Jacobian blocks ``[T, *p.shape]`` from the feature gradients: row ``t`` is ``Σ_k (∂z_k/∂θ)ᵀ C_k[t]``.

        ``cotangents[k]`` is ``[T, *features[k].shape]`` (e.g. from `feature_gradients`). Exact when
        every parameter reaches the losses only through ``features`` (a shared encoder's output).
        One batched pass through the trunk, or ``T`` ordinary ones (see ``batched``); the graph is retained.
        """
        if not parameters:
            raise ConfigError("no shared parameters to differentiate: the model has none that require grad")
        num_tasks = cotangents[0].shape[0]
        device = cotangents[0].device
        if self.uses_batched(device, features) and self.fallback_reason is None and num_tasks > 1:
            blocks = self._try_batched(features, parameters, cotangents)
            if blocks is not None:
                return blocks
        rows = [
            torch.autograd.grad(
                list(features),
                list(parameters),
                grad_outputs=[c[t] for c in cotangents],
                retain_graph=True,
                allow_unused=True,
                materialize_grads=True,
            )
            for t in range(num_tasks)
        ]
        return [torch.stack([row[k] for row in rows]) for k in range(len(parameters))]

    def jacobian(self, losses: Tensor, parameters: Sequence[Tensor]) -> Tensor:
        """``J [T, P]``: row ``t`` is ``∇ losses[t]`` w.r.t. ``parameters``, flattened and concatenated in order."""
        blocks = self.gradients(losses, parameters)
        return torch.cat([b.reshape(losses.numel(), -1) for b in blocks], dim=1)

    def gramian(self, losses: Tensor, parameters: Sequence[Tensor]) -> Tensor:
        """``G = J Jᵀ [T, T]``, accumulated block by block (the ``[T, P]`` matrix is never concatenated)."""
        gramian = self.block_gramian(self.gradients(losses, parameters, check_unused=False))
        self.warn_unused(gramian.diagonal() == 0)
        return gramian

    @staticmethod
    def block_gramian(blocks: Sequence[Tensor]) -> Tensor:
        """``Σ_k B_k B_kᵀ`` over the Jacobian's per-parameter blocks ``[T, ...]``, summed in float64.

        Each block's product is formed in the block's dtype (as one ``[T, P] × [P, T]`` product
        would be), without a float64 copy of the block nor the concatenated ``[T, P]`` matrix. On
        CPUs in column chunks that stay in cache (2× faster for a ``[10, 262144]`` block), each
        chunk's product added in float64.
        """
        num_tasks = blocks[0].shape[0]
        result = torch.zeros(num_tasks, num_tasks, dtype=torch.float64, device=blocks[0].device)
        for block in blocks:
            rows = block.reshape(num_tasks, -1)
            step = _GRAMIAN_COLUMNS if rows.device.type == "cpu" else rows.shape[1]
            for start in range(0, rows.shape[1], max(step, 1)):
                chunk = rows[:, start : start + step]
                result += (chunk @ chunk.T).double()
        return result

    def _try_batched(
        self, outputs: Sequence[Tensor], parameters: Sequence[Tensor], cotangents: Sequence[Tensor]
    ) -> list[Tensor] | None:
        """Blocks ``[T, *p.shape]`` of the vector-Jacobian products of ``outputs`` with each row of ``cotangents``.

        One vmapped backward pass per ``chunk_size`` rows. None, with one warning for the engine's
        life, when an operation has no batching rule (the caller then loops).
        """
        num_tasks = cotangents[0].shape[0]
        size = self.chunk_size or num_tasks
        parts: list[list[Tensor]] = []
        try:
            for start in range(0, num_tasks, size):
                grads = torch.autograd.grad(
                    list(outputs),
                    list(parameters),
                    grad_outputs=[c[start : start + size] for c in cotangents],
                    retain_graph=True,
                    allow_unused=True,
                    materialize_grads=True,
                    is_grads_batched=True,
                )
                count = min(size, num_tasks - start)
                # materialize_grads fills a parameter nothing reaches with zeros_like(parameter): no task dimension
                parts.append(
                    [
                        g if g.dim() == p.dim() + 1 else g.new_zeros(count, *p.shape)
                        for g, p in zip(grads, parameters, strict=True)
                    ]
                )
        except RuntimeError as error:
            self.fallback_reason = str(error).split("\n")[0]
            warnings.warn(
                "batched per-task gradients failed (an operation in the model has no vmap rule): "
                f"{self.fallback_reason!r}; falling back to a loop of {num_tasks} autograd.grad calls "
                "(correct but slower; this message is shown once)",
                RuntimeWarning,
                stacklevel=4,
            )
            return None
        if len(parts) == 1:
            return parts[0]
        return [torch.cat([part[k] for part in parts]) for k in range(len(parameters))]

    def _loop(self, losses: Sequence[Tensor], parameters: Sequence[Tensor]) -> list[Tensor]:
        rows: list[tuple[Tensor, ...]] = []
        for loss in losses:
            if not loss.requires_grad:
                rows.append(tuple(torch.zeros_like(p) for p in parameters))
                continue
            rows.append(
                torch.autograd.grad(
                    loss, list(parameters), retain_graph=True, allow_unused=True, materialize_grads=True
                )
            )
        return [torch.stack([row[k] for row in rows]) for k in range(len(parameters))]

    @staticmethod
    def warn_unused(unused: Tensor) -> None:
        """Warn about the rows flagged in ``unused [T]`` (bool): tasks whose gradient is all zero."""
        tasks = unused.nonzero().flatten().tolist()
        if not tasks:
            return
        warnings.warn(
            f"the loss of task row(s) {tasks} has a zero gradient w.r.t. the shared parameters (it does not "
            "depend on them, or they are saturated); those rows count as zero gradients",
            RuntimeWarning,
            stacklevel=4,
        )


def _has_convolution(roots: Sequence[Tensor]) -> bool:
    """True when the autograd graph below ``roots`` holds a convolution's backward node."""
    stack = [r.grad_fn for r in roots if r.grad_fn is not None]
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if "Convolution" in node.name():
            return True
        stack.extend(child for child, _ in node.next_functions if child is not None)
    return False


def jacobian(losses: Tensor, parameters: Sequence[Tensor], *, chunk_size: int | None = None) -> Tensor:
    """``J [T, P]`` of ``losses [T]`` w.r.t. ``parameters`` in one batched pass (see `JacobianEngine`)."""
    return JacobianEngine(chunk_size).jacobian(losses, parameters)


def gramian(losses: Tensor, parameters: Sequence[Tensor], *, chunk_size: int | None = None) -> Tensor:
    """``G = J Jᵀ [T, T]`` (float64) of ``losses [T]`` w.r.t. ``parameters`` (see `JacobianEngine`)."""
    return JacobianEngine(chunk_size).gramian(losses, parameters)
