"""Multi-task fine-tuning of a pretrained transformer (all-MiniLM-L6-v2) on four real text tasks, offline.

Tasks (`multitask.data.load_reviews_and_tweets`, tokenised by the model's own tokenizer): ``imdb`` and
``rotten_tomatoes`` sentiment (binary, each on its own reviews), and on Trump's tweets ``source`` (Android
or iPhone, binary) and ``retweets`` (standardised log retweet count, regression): two kinds of text,
classification and regression. The encoder is the bundled sentence-transformers/all-MiniLM-L6-v2 (6 layers,
384 wide, 22.7 M parameters; `multitask.models.pretrained_minilm`), mean-pooled
(`multitask.models.TransformerEncoder`); each task has a linear head on the 384 pooled features.

Per seed, the same splits, budget and selection rule for every method:

- ``stl``: full fine-tuning of one MiniLM per task;
- ``mtl``: hard sharing, one MiniLM fine-tuned for all four tasks (the sum of the losses);
- ``mtl_upgrad``: the same with UPGrad (Quinton & Rey 2024) aggregating the four task gradients of the
  encoder's 22.7 M parameters (a ``[4, 22.7 M]`` Jacobian, 347 MiB). Not on the representation: each
  task reads its own batch here, so the tasks' gradients with respect to the representation lie on
  different rows, never conflict, and UPGrad would reduce to their mean (docs/methods/transformers.md);
- ``lora``: the frozen MiniLM with one LoRA adapter per task (rank 8 on W_q and W_v; `TaskLoRA`);
- ``mtl_lora``: the frozen MiniLM with MTL-LoRA adapters (shared A and B_i, per-task Λ_t; `TaskLoRA`);
- ``boe_stl``, ``boe_mtl``: the library's text baseline on the same rows and splits, a bag of embeddings
  (64-d word vectors, 64 tanh units) trained from scratch, single-task and hard-shared (20 epochs).

Every multi-task step draws a batch of each task (``tasks_per_step=4``), so UPGrad sees four gradients.
The multi-task models select their epoch on validation Δm% against the single-task models (the rule of
`multitask.studies.compare`; each single-task model on its task's main validation metric). Prints and
writes ``transformer_mtl.md`` into ``--output``: test metrics per task, mean ± std over the seeds, Δm%
against ``stl`` and seconds per method.

    python examples/transformer_mtl.py --seeds 3 --output runs/transformer_mtl

Defaults (1,001 s, about 17 minutes, on two CPU cores): 300 rows per task (210 train, 30 validation, 60 test),
sequences cut to 40 tokens, 3 epochs, batches of 16, AdamW at 5e-5 for a fine-tuned encoder and 1e-3
for the heads and the adapters.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from torch import nn

from multitask import Strategy, Task, TrainerOptions
from multitask.adversarial import BagOfEmbeddings
from multitask.aggregation import UPGrad
from multitask.comparison import Comparison
from multitask.data import load_reviews_and_tweets
from multitask.models import (
    LoRAScheme,
    ModelFactory,
    MultiTaskModel,
    TaskLoRA,
    TransformerEncoder,
    load_tokenizer,
    pretrained_minilm,
)
from multitask.studies import train_multitask, train_single_task
from multitask.training.trainer import OptimizerFactory
from multitask.types import ResultsDict

KEYS = ("input_ids", "attention_mask")


def one_seed(args: argparse.Namespace, seed: int) -> Comparison:
    """Every method on one seed's splits: test metrics per method, task and metric."""
    folder = pretrained_minilm()
    data = load_reviews_and_tweets(
        tokenizer=load_tokenizer(folder), max_length=args.max_length, max_per_task=args.max_per_task, seed=seed
    )
    encoder = TransformerEncoder(folder, pooling="mean")
    tasks = data.make_tasks(encoder.out_features)

    def options(lr: float, head_lr: float) -> TrainerOptions:
        return TrainerOptions(
            max_epochs=args.epochs,
            batch_size=args.batch_size,
            eval_batch_size=64,
            optimizer=two_rates(encoder, lr, head_lr),
            tasks_per_step=len(tasks),
            progress=False,
        )

    def adapters(scheme: LoRAScheme) -> ModelFactory:
        def build(fresh: Sequence[Task]) -> MultiTaskModel:
            return TaskLoRA(TransformerEncoder(folder, pooling="mean"), fresh, rank=8, scheme=scheme, input_key=KEYS)

        return build

    splits = (data.train, data.val, data.test)
    fine_tuning = options(args.lr, args.head_lr)
    stl = train_single_task(encoder, tasks, *splits, input_key=KEYS, seed=seed, options=fine_tuning)
    # as `compare`: the multi-task models select their epoch on validation Δm% against the single-task models
    baseline = {t.name: {m: stl.val[t.name][m] for m in t.metric_fns} for t in tasks}
    upgrad = fine_tuning.replace(strategy=lambda: Strategy(aggregation=UPGrad()))
    adapted = TrainerOptions(
        max_epochs=args.epochs, batch_size=args.batch_size, eval_batch_size=64, lr=args.head_lr,
        tasks_per_step=len(tasks), progress=False,
    )  # fmt: skip
    runs: dict[str, tuple[ModelFactory | None, TrainerOptions]] = {
        "mtl": (None, fine_tuning),
        "mtl_upgrad": (None, upgrad),
        "lora": (adapters("lora"), adapted),
        "mtl_lora": (adapters("mtl_lora"), adapted),
    }
    results = {"stl": stl.test}
    seconds = {"stl": stl.seconds}
    print(f"  seed {seed}: stl in {stl.seconds:.0f} s", file=sys.stderr)
    for method, (model, method_options) in runs.items():
        run = train_multitask(
            encoder,
            tasks,
            *splits,
            input_key=KEYS,
            seed=seed,
            model=model,
            method=method,
            options=method_options.replace(baseline=baseline),
        )
        results[method], seconds[method] = run.test, run.seconds
        print(f"  seed {seed}: {method} in {run.seconds:.0f} s", file=sys.stderr)
    results.update(_bag_of_embeddings(args, seed, seconds))
    directions = {t.name: {m: f.higher_is_better for m, f in t.metric_fns.items()} for t in tasks}
    tested = {
        method: {task: {m: v for m, v in metrics.items() if m != "loss"} for task, metrics in per_task.items()}
        for method, per_task in results.items()
    }
    return Comparison(tested, directions, seconds=seconds)


def two_rates(encoder: nn.Module, encoder_lr: float, head_lr: float) -> OptimizerFactory:
    """AdamW with the encoder's parameters at ``encoder_lr`` and the rest (the heads) at ``head_lr``.

    A pretrained encoder is fine-tuned at a small rate while the new heads need a larger one: at the encoder's
    rate a head barely moves while the other tasks move the shared encoder under it. The models of this
    example (`HardSharing`) register the encoder first, so its parameters are the first ones the Trainer
    passes; their shapes are checked against ``encoder``'s.
    """
    shapes = [p.shape for p in encoder.parameters()]

    def make(parameters: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
        every = list(parameters)
        first, rest = every[: len(shapes)], every[len(shapes) :]
        if [p.shape for p in first] != shapes:
            raise ValueError("the model does not start with the encoder's parameters")
        groups = [{"params": first, "lr": encoder_lr}, {"params": rest, "lr": head_lr}]
        return torch.optim.AdamW(groups)

    return make


def _bag_of_embeddings(args: argparse.Namespace, seed: int, seconds: dict[str, float]) -> dict[str, ResultsDict]:
    """The library's text baseline on the same rows: a bag of embeddings (64-d word vectors of a vocabulary built
    from the training texts, then 64 tanh units), single-task and hard-shared, trained from scratch."""
    data = load_reviews_and_tweets(max_length=args.max_length, max_per_task=args.max_per_task, seed=seed)
    encoder = nn.Sequential(BagOfEmbeddings(data.num_embeddings["tokens"], 64, [64]), nn.Tanh())
    tasks = data.make_tasks(64)
    options = TrainerOptions(
        max_epochs=20, batch_size=args.batch_size, lr=3e-3, tasks_per_step=len(tasks), progress=False
    )
    splits = (data.train, data.val, data.test)
    stl = train_single_task(encoder, tasks, *splits, input_key="tokens", seed=seed, options=options)
    baseline = {t.name: {m: stl.val[t.name][m] for m in t.metric_fns} for t in tasks}
    mtl = train_multitask(
        encoder, tasks, *splits, input_key="tokens", seed=seed, options=options.replace(baseline=baseline)
    )
    seconds["boe_stl"], seconds["boe_mtl"] = stl.seconds, mtl.seconds
    return {"boe_stl": stl.test, "boe_mtl": mtl.test}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--max-per-task", type=int, default=300)
    parser.add_argument("--max-length", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--head-lr", type=float, default=1e-3, help="heads (and adapters): AdamW's rate")
    parser.add_argument("--output", type=Path, default=Path("runs/transformer_mtl"))
    args = parser.parse_args()
    torch.set_num_threads(2)
    started = time.perf_counter()
    comparisons = [one_seed(args, seed) for seed in range(args.seeds)]
    mean = Comparison.mean(comparisons)
    table = mean.to_markdown()
    args.output.mkdir(parents=True, exist_ok=True)
    wall = time.perf_counter() - started
    text = f"{table}\n\n{args.seeds} seeds; wall time {wall:.0f} s\n"
    (args.output / "transformer_mtl.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
