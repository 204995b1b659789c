"""Peak memory and time of one multi-task training step on the pretrained MiniLM, per gradient-aggregation path.

The model is all-MiniLM-L6-v2 (`multitask.models.pretrained_minilm`, 22.7 M parameters) as a
`multitask.models.TransformerEncoder` (mean pooling, ``max_length`` = the sequence length), with T
binary tasks, each a head ``nn.Linear(384, 1)`` on the pooled features. One batch of ``--batch``
(16) sequences of ``--length`` (64) tokens, built once: ``[CLS]``, random token ids drawn uniformly
from the vocabulary's ids 1000 and above (past BERT's special and unused tokens), ``[SEP]``, then
padding; each sequence's real length (``[CLS]`` and ``[SEP]`` included) drawn uniformly from
``length // 4 .. length``, the attention mask 1 on it and 0 on the padding; labels 0/1 at random.

One step = ``optimizer.zero_grad()``, the forward pass, ``multitask.task_losses``,
``multitask.backward(losses, strategy, shared_params=model.shared_parameters(), task_params=<the
other trainable parameters>, features=model.shared_features() (hard sharing only), engine=...)``,
``optimizer.step()`` (Adam, lr 1e-5, over every trainable parameter), in ``train()`` mode (dropout on).
Configurations (``--configs``):

1. ``hard/sum``: `HardSharing`, full fine-tuning, ``Strategy(tasks=...)`` (no aggregation: the sum);
2. ``hard/upgrad-jacobian``: the same, ``Strategy(aggregation=UPGrad())``, ``JacobianEngine()``: the
   update from the Jacobian of the shared parameters (computed features-first from ``features=``);
3. ``hard/upgrad-gramian``: the same with ``JacobianEngine(update_by_backward=True)``;
4. ``hard/upgrad-representation``: ``Strategy(aggregation=UPGrad(), on="representation")``;
5. ``mtl_lora/upgrad-jacobian``: `TaskLoRA` ``scheme="mtl_lora"``, rank 8, frozen backbone, UPGrad on
   the Jacobian (the shared parameters are MTL-LoRA's shared projections, nothing else);
6. ``lora/sum``: `TaskLoRA` ``scheme="lora"``, rank 8, frozen backbone, the sum (no shared parameters).

Extra rows, not run by default: ``mtl_lora/upgrad-jacobian-loop`` (configuration 5 with
``JacobianEngine(batched=False)``: a loop of T backward passes instead of one vmapped pass) and
``mtl_lora/upgrad-gramian`` (``update_by_backward=True``).

Each (configuration, T) runs in fresh interpreters, twice:

- a *memory* run, with glibc's ``malloc`` told to serve every block of 128 KiB or more by ``mmap``
  (``MALLOC_MMAP_THRESHOLD_=131072``, which also turns off glibc's dynamic threshold) so that freed
  tensors leave the resident set at once and the resident set follows the live tensors. It builds
  the model (``RSS after build``: ``VmRSS`` before any step), runs ``--warmup`` (1) step (Adam
  allocates its state there), then for each of ``--memory-steps`` (2) steps: ``zero_grad``,
  ``gc.collect()``, reads ``VmRSS`` (``RSS before step``: model, Adam state, the libraries, and
  whatever the previous step left alive), resets the kernel's high-water mark (``echo 5 >
  /proc/self/clear_refs``, which resets ``ru_maxrss`` too), runs the step and reads
  ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (``step peak``). The table shows the step with the
  larger ``peak − RSS before step``. Last, ``the last step's graph``: how much the resident set falls
  when a `HardSharing` model's kept ``shared_features()`` (the features *with their autograd graph*,
  kept until the next forward pass) are dropped after the last step; ``peak − (RSS before − graph)``
  is then the step's peak over the model and optimiser state alone;
- a *time* run, with the default allocator: build, ``--warmup`` step(s), then ``--repeats`` (3)
  timed steps (``zero_grad`` included); reported: their median (and minimum) wall time, and the process's peak
  resident set over its whole life (``ru_maxrss``: what ``top`` would show at worst, with glibc's
  caching of freed blocks).

``J`` is the analytic size of the Jacobian of the shared parameters, ``T × P × 4`` bytes (float32),
P the number of trainable shared parameters (for hard sharing all of MiniLM's, its unused pooler's
147,840 included: `TransformerEncoder` leaves it in place, and it gets zero rows); whether the path
holds it is in the table's notes. A configuration that fails has its error in the table. Writes
``transformer_memory.md`` to ``--output-dir`` (default ``benchmarks/results``).

    python benchmarks/transformer_memory.py [--tasks 2 4] [--configs ...] [--batch 16] [--length 64]
        [--warmup 1] [--memory-steps 2] [--repeats 3] [--threads N] [--output-dir benchmarks/results]

Run time on 2 CPU cores shared with other work: about 8 minutes for the defaults (twelve
(configuration, T) pairs, two interpreters each, each loading the model), 11 minutes with the two
extra configurations.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import importlib.metadata
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

import multitask
from multitask import Strategy, Task
from multitask.aggregation import UPGrad
from multitask.jacobian import JacobianEngine
from multitask.models import HardSharing, MultiTaskModel, TaskLoRA, TransformerEncoder, pretrained_minilm

SEED = 0
MIB = 2**20
LR = 1e-5
MMAP_THRESHOLD = 131_072  # bytes: every larger block is its own mmap, returned to the kernel when freed

#: configuration name -> (model, aggregation on, engine keyword arguments, what it is)
CONFIGS: dict[str, tuple[str, str | None, dict[str, bool], str]] = {
    "hard/sum": ("hard", None, {}, "HardSharing, full fine-tuning, sum of losses (reference)"),
    "hard/upgrad-jacobian": ("hard", "parameters", {}, "HardSharing, full fine-tuning, UPGrad on the Jacobian"),
    "hard/upgrad-gramian": (
        "hard",
        "parameters",
        {"update_by_backward": True},
        "HardSharing, full fine-tuning, UPGrad via the Gramian (update_by_backward=True)",
    ),
    "hard/upgrad-representation": (
        "hard",
        "representation",
        {},
        "HardSharing, full fine-tuning, UPGrad on the representation",
    ),
    "mtl_lora/upgrad-jacobian": (
        "mtl_lora",
        "parameters",
        {},
        "TaskLoRA mtl_lora r=8, frozen backbone, UPGrad on the Jacobian",
    ),
    "lora/sum": ("lora", None, {}, "TaskLoRA lora r=8, frozen backbone, sum of losses"),
    "mtl_lora/upgrad-jacobian-loop": (
        "mtl_lora",
        "parameters",
        {"batched": False},
        "TaskLoRA mtl_lora r=8, frozen backbone, UPGrad on the Jacobian, JacobianEngine(batched=False)",
    ),
    "mtl_lora/upgrad-gramian": (
        "mtl_lora",
        "parameters",
        {"update_by_backward": True},
        "TaskLoRA mtl_lora r=8, frozen backbone, UPGrad via the Gramian (update_by_backward=True)",
    ),
}
DEFAULT_CONFIGS = list(CONFIGS)[:6]
COLUMNS = [
    "Memory columns in MiB (2^20 bytes) of resident set (RSS), from a run with `MALLOC_MMAP_THRESHOLD_=131072` "
    "(freed tensors are returned to the kernel at once); see the script's docstring:",
    "",
    "- *RSS after build*: the model and the batch built, before any step;",
    "- *RSS before step*: after the warm-up step and `zero_grad` (model, Adam state, libraries, and what the "
    "previous step left alive);",
    "- *of which the last step's graph*: the fall in RSS when the `HardSharing` model's kept "
    "`shared_features()` (with their autograd graph) are dropped after a step;",
    "- *step peak*: the kernel's RSS high-water mark during one step (reset just before it), absolute;",
    "- *peak − RSS before step*: the step's increase as asked (over the memory after build and warm-up);",
    "- *peak − (RSS before − graph)*: the step's increase over the model and optimiser state alone;",
    "- *process peak, default malloc*: `ru_maxrss` over the whole life of a second interpreter with the "
    "default allocator (build, warm-up, the timed steps), which also ran the timing.",
]


# ----------------------------------------------------------------------------------------------- child


def _status_kib(key: str) -> int:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``)."""
    found = re.search(rf"^{key}:\s+(\d+) kB", Path("/proc/self/status").read_text(), flags=re.M)
    if found is None:
        raise RuntimeError(f"/proc/self/status has no {key}")
    return int(found.group(1))


def _reset_peak() -> None:
    """Reset the kernel's resident-set high-water mark (``VmHWM`` and ``ru_maxrss``) to the current RSS."""
    Path("/proc/self/clear_refs").write_text("5")


def _peak_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux


@dataclass
class Setup:
    model: MultiTaskModel
    tasks: list[Task]
    batch: dict[str, Tensor]
    zero_grad: Callable[[], None]
    step: Callable[[], None]  # forward, backward, optimiser step (after zero_grad)
    shared: int  # trainable shared parameters
    trainable: int
    total: int


def make_batch(encoder: TransformerEncoder, num_tasks: int, batch: int, length: int) -> dict[str, Tensor]:
    """Random token ids in the vocabulary with ``[CLS]``/``[SEP]``/padding and its attention mask, random labels."""
    generator = torch.Generator().manual_seed(SEED)
    tokenizer = encoder.tokenizer
    config: Any = getattr(encoder.backbone, "config", None)
    vocab = int(config.vocab_size)
    cls_id, sep_id, pad_id = (int(tokenizer.cls_token_id), int(tokenizer.sep_token_id), int(tokenizer.pad_token_id))
    ids = torch.randint(1000, vocab, (batch, length), generator=generator)
    lengths = torch.randint(max(length // 4, 2), length + 1, (batch,), generator=generator)
    positions = torch.arange(length).expand(batch, length)
    mask = (positions < lengths[:, None]).long()
    ids[:, 0] = cls_id
    ids[positions == (lengths[:, None] - 1)] = sep_id
    ids[mask == 0] = pad_id
    result = {"input_ids": ids, "attention_mask": mask}
    for t in range(num_tasks):
        result[f"task{t}"] = torch.randint(0, 2, (batch,), generator=generator).float()
    return result


def build(config: str, num_tasks: int, batch_size: int, length: int) -> Setup:
    """The model, optimiser, batch and step of one configuration."""
    kind, on, engine_options, _ = CONFIGS[config]
    torch.manual_seed(SEED)
    encoder = TransformerEncoder(pretrained_minilm(), pooling="mean", max_length=length, freeze=kind != "hard")
    tasks = [Task(f"task{t}", nn.Linear(encoder.out_features, 1), "binary") for t in range(num_tasks)]
    names = [task.name for task in tasks]
    batch = make_batch(encoder, num_tasks, batch_size, length)
    keys = ("input_ids", "attention_mask")
    model: MultiTaskModel
    if kind == "hard":
        model = HardSharing(encoder, tasks, input_key=keys)
    else:
        model = TaskLoRA(encoder, tasks, rank=8, scheme=kind, freeze_encoder=True, input_key=keys)  # type: ignore[arg-type]
    model.train()
    strategy = Strategy(aggregation=UPGrad(), on=on, tasks=names) if on is not None else Strategy(tasks=names)  # type: ignore[arg-type]
    engine = JacobianEngine(**engine_options)
    shared = [p for p in model.shared_parameters() if p.requires_grad]
    shared_ids = {id(p) for p in shared}
    others = [p for p in model.parameters() if p.requires_grad and id(p) not in shared_ids]
    optimizer = torch.optim.Adam([*shared, *others, *strategy.parameters()], lr=LR)
    use_features = isinstance(model, HardSharing)

    def zero_grad() -> None:
        optimizer.zero_grad(set_to_none=True)

    def step() -> None:
        outputs = model(batch)
        losses = multitask.task_losses(tasks, outputs, batch)
        features = model.shared_features() if use_features else None
        result = multitask.backward(
            losses, strategy, shared_params=shared, task_params=others, features=features, engine=engine
        )
        if result.applied:
            optimizer.step()

    return Setup(
        model,
        tasks,
        batch,
        zero_grad,
        step,
        shared=sum(p.numel() for p in shared),
        trainable=sum(p.numel() for p in [*shared, *others]),
        total=sum(p.numel() for p in model.parameters()),
    )


def child(arguments: argparse.Namespace) -> dict[str, Any]:
    """One configuration's measurements in this interpreter (``--child memory|time``)."""
    if arguments.threads is not None:
        torch.set_num_threads(arguments.threads)
    record: dict[str, Any] = {"threads": torch.get_num_threads()}
    setup = build(arguments.config, arguments.tasks[0], arguments.batch, arguments.length)
    record.update(shared=setup.shared, trainable=setup.trainable, total=setup.total)
    gc.collect()
    record["rss_built_mib"] = _status_kib("VmRSS") / 1024
    for _ in range(arguments.warmup):
        setup.zero_grad()
        setup.step()
    gc.collect()
    if arguments.child == "memory":
        before, increases = [], []
        for _ in range(arguments.memory_steps):
            setup.zero_grad()
            gc.collect()
            rss = _status_kib("VmRSS")
            _reset_peak()
            setup.step()
            before.append(rss / 1024)
            increases.append((_peak_kib() - rss) / 1024)
        record.update(rss_before_step_mib=before, step_increase_mib=increases)
        # what the last step left alive until the next forward pass: HardSharing keeps its shared features
        # (with their autograd graph) for `shared_features()`; dropping them frees the graph's saved tensors
        setup.zero_grad()
        gc.collect()
        rss = _status_kib("VmRSS")
        if isinstance(setup.model, HardSharing):
            setup.model._features.value = None
        gc.collect()
        record["held_graph_mib"] = (rss - _status_kib("VmRSS")) / 1024
    else:
        times = []
        for _ in range(arguments.repeats):
            started = time.perf_counter()
            setup.zero_grad()
            setup.step()
            times.append(time.perf_counter() - started)
        record.update(step_s=times, process_peak_mib=_peak_kib() / 1024)
    return record


# ---------------------------------------------------------------------------------------------- parent


@dataclass
class Row:
    config: str
    num_tasks: int
    memory: dict[str, Any] = field(default_factory=dict)
    timing: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def run_child(mode: str, config: str, num_tasks: int, arguments: argparse.Namespace) -> dict[str, Any]:
    """Run ``child`` in a fresh interpreter; its JSON record, or ``{"error": message}``."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        mode,
        "--config",
        config,
        "--tasks",
        str(num_tasks),
        "--batch",
        str(arguments.batch),
        "--length",
        str(arguments.length),
        "--warmup",
        str(arguments.warmup),
        "--memory-steps",
        str(arguments.memory_steps),
        "--repeats",
        str(arguments.repeats),
        *([f"--threads={arguments.threads}"] if arguments.threads is not None else []),
    ]
    env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    if mode == "memory":
        env["MALLOC_MMAP_THRESHOLD_"] = str(MMAP_THRESHOLD)
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        tail = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}, no output"])[-1]
        return {"error": tail}
    record: dict[str, Any] = json.loads(lines[-1])
    return record


def analytic_jacobian_mib(row: Row) -> float:
    shared = int((row.memory or row.timing).get("shared", 0))
    return row.num_tasks * shared * 4 / MIB


def holds(config: str) -> str:
    """What the path materialises of the Jacobian (from the library's code, not measured)."""
    return {
        "hard/sum": "no per-task gradients",
        "hard/upgrad-jacobian": "blocks [T, *p.shape] for every shared p (= J), then their weighted sum per block",
        "hard/upgrad-gramian": "the same blocks (= J) until the Gramian is formed, then one more backward pass",
        "hard/upgrad-representation": "∂L_t/∂z [T, B, 384] only; one backward pass with Σ_t w'_t ∂L_t/∂z",
        "mtl_lora/upgrad-jacobian": "J's blocks over the shared adapters (vmapped pass over the stacked losses)",
        "lora/sum": "no shared parameters, no per-task gradients",
        "mtl_lora/upgrad-jacobian-loop": "J's blocks over the shared adapters (a loop of T passes)",
        "mtl_lora/upgrad-gramian": "J's blocks until the Gramian is formed, then one more backward pass",
    }[config]


def table(rows: Sequence[Row]) -> list[str]:
    lines = [
        "| # | configuration | T | shared P | J = T·P·4 B (MiB) | RSS after build | RSS before step "
        "| of which the last step's graph | step peak | peak − RSS before step | peak − (RSS before − graph) "
        "| process peak, default malloc | step time, median (min), s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        number = list(CONFIGS).index(row.config) + 1
        label = f"{number}" if number <= 6 else "extra"
        memory, timing = row.memory, row.timing
        if "shared" not in memory and "shared" not in timing:
            lines.append(f"| {label} | `{row.config}` | {row.num_tasks} | failed: {row.error} |" + " |" * 9)
            continue
        shared = int((memory or timing)["shared"])
        jacobian = f"{analytic_jacobian_mib(row):.1f}" if shared else "— (P = 0)"
        cells: list[str] = [f"{shared:,}", jacobian]
        if "step_increase_mib" in memory:
            worst = max(range(len(memory["step_increase_mib"])), key=lambda i: memory["step_increase_mib"][i])
            before, increase = memory["rss_before_step_mib"][worst], memory["step_increase_mib"][worst]
            held = memory["held_graph_mib"]
            cells += [f"{memory['rss_built_mib']:.0f}", f"{before:.0f}", f"{held:.0f}", f"{before + increase:.0f}"]
            cells += [f"{increase:.0f}", f"{increase + held:.0f}"]
        else:
            cells += [f"failed: {row.error}"] + [""] * 5
        if "step_s" in timing:
            times = timing["step_s"]
            cells += [f"{timing['process_peak_mib']:.0f}", f"{statistics.median(times):.2f} ({min(times):.2f})"]
        else:
            cells += [f"failed: {row.error}" if "step_increase_mib" in memory else "", ""]
        lines.append(f"| {label} | `{row.config}` | {row.num_tasks} | " + " | ".join(cells) + " |")
    return lines


def header(arguments: argparse.Namespace, threads: int | None, load: tuple[float, float, float]) -> list[str]:
    command = "python benchmarks/transformer_memory.py " + " ".join(
        ["--tasks " + " ".join(map(str, arguments.tasks))]
        + ([("--configs " + " ".join(arguments.configs))] if arguments.configs != DEFAULT_CONFIGS else [])
        + [f"--batch {arguments.batch}", f"--length {arguments.length}", f"--warmup {arguments.warmup}"]
        + [f"--memory-steps {arguments.memory_steps}", f"--repeats {arguments.repeats}"]
        + ([f"--threads {arguments.threads}"] if arguments.threads is not None else [])
    )
    return [
        "# One training step on the pretrained MiniLM: peak memory and time per aggregation path",
        "",
        f"- command: `{command}`",
        f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- machine: CPU only, {os.cpu_count()} cores (shared with other work), {platform.machine()}, "
        f"{platform.system()} {platform.release()}; torch {torch.__version__}, transformers "
        f"{importlib.metadata.version('transformers')}, Python {platform.python_version()}; "
        f"{threads if threads is not None else '?'} torch thread(s), OMP_WAIT_POLICY="
        f"{os.environ.get('OMP_WAIT_POLICY', 'PASSIVE')}; load average at the start "
        + "/".join(f"{value:.2f}" for value in load)
        + " (1/5/15 min)",
        f"- model: all-MiniLM-L6-v2 (`pretrained_minilm()`), mean pooling; T binary heads Linear(384, 1); "
        f"batch {arguments.batch} × {arguments.length} tokens (random ids, random real lengths "
        f"{max(arguments.length // 4, 2)}–{arguments.length}); Adam lr {LR:g}; train mode",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, nargs="+", default=[2, 4], help="numbers of tasks T (default 2 4)")
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=DEFAULT_CONFIGS)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=64, help="sequence length in tokens (default 64)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps before measuring (default 1)")
    parser.add_argument("--memory-steps", type=int, default=2, help="steps whose peak is measured (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="timed steps (default 3)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: leave torch's)")
    parser.add_argument("--output-dir", type=Path, default=Path(__file__).resolve().parent / "results")
    parser.add_argument("--child", choices=["memory", "time"], default=None, help=argparse.SUPPRESS)
    parser.add_argument("--config", choices=list(CONFIGS), default=None, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if min(arguments.batch, arguments.length, arguments.memory_steps, arguments.repeats, *arguments.tasks) < 1:
        parser.error("--tasks, --batch, --length, --memory-steps and --repeats must be positive")
    if arguments.length < 2 or arguments.warmup < 0:
        parser.error("--length must be at least 2 and --warmup non-negative")

    if arguments.child is not None:
        try:
            record = child(arguments)
        except Exception as error:  # reported by the parent in the table
            traceback.print_exc()
            record = {"error": f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"}
        print(json.dumps(record), flush=True)
        return

    started = time.perf_counter()
    start_load = os.getloadavg()
    rows: list[Row] = []
    threads: int | None = None
    for num_tasks in arguments.tasks:
        for config in arguments.configs:
            row = Row(config, num_tasks)
            for mode in ("memory", "time"):
                record = run_child(mode, config, num_tasks, arguments)
                if "error" in record:
                    row.error = record["error"]
                    print(f"{config} T={num_tasks} {mode}: FAILED {record['error']}", flush=True)
                    if mode == "memory":
                        row.memory = {}
                    break
                threads = record.get("threads", threads)
                if mode == "memory":
                    row.memory = record
                else:
                    row.timing = record
                print(f"{config} T={num_tasks} {mode}: {json.dumps(record)} ({time.perf_counter() - started:.0f} s)")
            rows.append(row)

    lines = [
        *header(arguments, threads, start_load),
        "",
        *COLUMNS,
        "",
        *table(rows),
        "",
        "What each path holds of the Jacobian:",
        "",
    ]
    lines += [f"- `{config}`: {holds(config)}" for config in arguments.configs]
    ending = "/".join(f"{load:.2f}" for load in os.getloadavg())
    lines += ["", f"Wall time of the run: {time.perf_counter() - started:.0f} s; load average at the end {ending}.", ""]
    lines += ["Raw records (JSON, one per row):", "", "```"]
    lines += [json.dumps(asdict(row)) for row in rows]
    lines += ["```"]
    text = "\n".join(lines) + "\n"
    print(text)
    arguments.output_dir.mkdir(parents=True, exist_ok=True)
    (arguments.output_dir / "transformer_memory.md").write_text(text)
    print(f"wrote {arguments.output_dir / 'transformer_memory.md'}")


if __name__ == "__main__":
    main()
