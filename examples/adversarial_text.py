"""Adversarial multi-task text classification (Liu, Qiu & Huang, ACL 2017) on two real multi-domain data sets.

Per data set and seed, six models on the same splits, budget and selection rule:

- single-task: one encoder and head per task (`multitask.studies.train_single_task`);
- hard sharing: one shared encoder, one head per task (FS-MTL in the paper);
- shared-private: a shared encoder plus a private encoder per task, heads on ``[s; h_t]`` (SP-MTL);
- shared-private + orthogonality: the same with ``γ Σ_t ‖S_tᵀ H_t‖²_F``, no adversary (to tell
  the two terms' effects apart);
- adversarial shared-private (ASP-MTL: the adversary and the orthogonality term), with the task
  discriminator trained by gradient reversal and, separately, by alternating steps.

Data: ``reviews``, sentiment of IMDB reviews and of Rotten Tomatoes snippets, one task per source
(`multitask.data.load_movie_reviews`; ``--max-per-task`` subsamples each source); ``newsgroup``, the
four 20 Newsgroups binary tasks of MALSAR (`multitask.data.load_newsgroup`, TF-IDF; read from
``--newsgroup``, by default ``../shared/data/newsgroup``, and skipped with a message when absent).
Encoders, each ending in a 64-unit layer with ``--activation`` (tanh by default, bounded like the
paper's LSTM states): for reviews the mean of 64-d word vectors (`BagOfEmbeddings`) then that
layer; for newsgroup that layer on the 2,000 TF-IDF features. The multi-task models select their
epoch on validation Δm% against the single-task models (as `multitask.studies.compare`); each
single-task model on its validation accuracy.

Prints and writes into ``--output``: ``adversarial_text.md`` and ``.csv`` (test accuracy per task,
mean ± std over seeds; the discriminator's training accuracy in the last epoch; a probe's balanced
accuracy at telling the tasks apart from the shared features of test samples, `probe_task_accuracy`;
the mean absolute shared feature on test), and ``adversarial_text.png`` (discriminator accuracy
and orthogonality term by epoch, first seed).

    python examples/adversarial_text.py --seeds 3 --dataset both --output runs/adversarial_text

Defaults: 6 epochs, Adam at 3e-3, 64 samples per task and step, reviews cut to their first 200
tokens and each source to at most 10,000 reviews (IMDB has 25,000; Rotten Tomatoes 8,530), which
keeps the whole run near 10 minutes on two CPU cores. Adversary: weight ``w = 1`` and ``λ = 1``,
a discriminator with one hidden layer of 64 units (Liu et al.'s ``w = 0.05``: ``--weight 0.05``).
Orthogonality: ``γ = 1e-4``, not the paper's 0.01: ``Σ_t ‖S_tᵀ H_t‖²_F`` of a 64-sample batch of
reviews averages about 2,000 in the first epoch and grows without the constraint; at ``γ = 0.01``
it outweighs the task losses (docs/methods/adversarial.md has the numbers).
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from multitask import Strategy, Task, TrainerOptions
from multitask.adversarial import Adversary, BagOfEmbeddings, DANNSchedule, probe_task_accuracy, shared_features
from multitask.data import MultiTaskData, load_movie_reviews, load_newsgroup
from multitask.models import HardSharing, MultiTaskModel, SharedPrivate
from multitask.studies import RunResult, train_multitask, train_single_task

NEWSGROUP = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "newsgroup"
WIDTH = 64
METHODS = (
    "single-task",
    "hard sharing",
    "shared-private",
    "shared-private + orthogonality",
    "ASP (reversal)",
    "ASP (alternating)",
)
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU}


@dataclass
class Setting:
    """One data set: its splits, how to build an encoder, and the encoder's input column."""

    name: str
    data: MultiTaskData
    encoder: Callable[[], nn.Module]
    input_key: str


@dataclass
class Outcome:
    """One method's results on one data set and seed."""

    accuracy: dict[str, float]
    discriminator: float = math.nan  # training accuracy in the last epoch (ASP only)
    probe: float = math.nan  # balanced accuracy of a post-hoc task probe on test shared features
    magnitude: float = math.nan  # mean |s| of the test shared features
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0


def settings(dataset: str, seed: int, args: argparse.Namespace) -> list[Setting]:
    result = []
    activation = ACTIVATIONS[args.activation]
    if dataset in ("reviews", "both"):
        limit = args.max_per_task or None
        data = load_movie_reviews(max_per_task=limit, max_length=args.max_length, seed=seed)
        vocabulary = data.num_embeddings["tokens"]

        def text_encoder() -> nn.Module:
            return nn.Sequential(BagOfEmbeddings(vocabulary, WIDTH, ()), nn.Linear(WIDTH, WIDTH), activation())

        result.append(Setting("reviews", data, text_encoder, "tokens"))
    if dataset in ("newsgroup", "both"):
        if not args.newsgroup.is_dir():
            print(f"skipping newsgroup: {args.newsgroup} is absent (give --newsgroup FOLDER)")
        else:
            data = load_newsgroup(args.newsgroup, seed=seed)
            width = data.num_features
            result.append(Setting("newsgroup", data, lambda: nn.Sequential(nn.Linear(width, WIDTH), activation()), "x"))
    return result


def run_seed(setting: Setting, seed: int, args: argparse.Namespace) -> dict[str, Outcome]:
    data = setting.data
    assert isinstance(data.train, dict) and isinstance(data.val, dict) and isinstance(data.test, dict)
    options = TrainerOptions(
        seed=seed, max_epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, progress=False, device="cpu"
    )
    tasks = data.make_tasks(WIDTH)
    outcomes: dict[str, Outcome] = {}
    started = time.perf_counter()
    stl = train_single_task(
        setting.encoder(), tasks, data.train, data.val, data.test, input_key=setting.input_key, options=options
    )
    outcomes["single-task"] = Outcome(_accuracy(stl), seconds=time.perf_counter() - started)
    baseline = {name: {"accuracy": stl.val[name]["accuracy"]} for name in data.tasks}
    multitask = options.replace(baseline=baseline)

    def shared_private(gamma: float) -> Callable[[Sequence[Task]], MultiTaskModel]:
        def build(fresh: Sequence[Task]) -> MultiTaskModel:
            wide = data.make_tasks(2 * WIDTH, tasks=[t.name for t in fresh])  # heads read [s; h_t]
            return SharedPrivate(setting.encoder(), setting.encoder, wide, gamma=gamma, input_key=setting.input_key)

        return build

    runs: dict[str, tuple[Callable[[Sequence[Task]], MultiTaskModel] | None, Adversary | None]] = {
        "hard sharing": (None, None),
        "shared-private": (shared_private(0.0), None),
        "shared-private + orthogonality": (shared_private(args.orthogonality), None),
        "ASP (reversal)": (shared_private(args.orthogonality), _adversary("reversal", args)),
        "ASP (alternating)": (shared_private(args.orthogonality), _adversary("alternating", args)),
    }
    for method, (factory, adversary) in runs.items():
        started = time.perf_counter()
        captured: list[MultiTaskModel] = []
        run = train_multitask(
            setting.encoder(),
            tasks,
            data.train,
            data.val,
            data.test,
            model=_capturing(factory, setting, captured),
            method=method,
            input_key=setting.input_key,
            options=multitask.replace(strategy=Strategy(adversary=adversary)),
        )
        history = run.histories[method]
        probe = probe_task_accuracy(captured[0], data.train, data.test, seed=seed)
        features, _ = shared_features(captured[0], data.test)
        outcomes[method] = Outcome(
            _accuracy(run),
            history[-1].get("adversary/accuracy", math.nan),
            probe,
            float(features.abs().mean()),
            history,
            time.perf_counter() - started,
        )
    return outcomes


def _adversary(scheme: str, args: argparse.Namespace) -> Adversary:
    schedule = DANNSchedule() if args.schedule == "dann" else args.coefficient
    return Adversary(scheme=scheme, weight=args.weight, schedule=schedule, lr=args.discriminator_lr)  # type: ignore[arg-type]


def _capturing(
    factory: Callable[[Sequence[Task]], MultiTaskModel] | None, setting: Setting, captured: list[MultiTaskModel]
) -> Callable[[Sequence[Task]], MultiTaskModel]:
    """The model factory, keeping the model it builds (for the probe after training)."""

    def build(fresh: Sequence[Task]) -> MultiTaskModel:
        model = (
            factory(fresh)
            if factory is not None
            else HardSharing(setting.encoder(), fresh, input_key=setting.input_key)
        )
        captured.append(model)
        return model

    return build


def _accuracy(run: RunResult) -> dict[str, float]:
    return {name: metrics["accuracy"] for name, metrics in run.test.items()}


def _mean_std(values: Sequence[float]) -> str:
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return "—"
    std = statistics.stdev(finite) if len(finite) > 1 else 0.0
    return f"{100 * statistics.mean(finite):.1f} ± {100 * std:.1f}"


def report(results: Mapping[str, list[dict[str, Outcome]]], output: Path, command: str) -> str:
    lines = [f"`{command}`", ""]
    rows: list[list[str]] = []
    for dataset, seeds in results.items():
        tasks = list(seeds[0]["single-task"].accuracy)
        chance = 100 / len(tasks)
        lines += [
            f"**{dataset}** — test accuracy (%) per task, mean ± std over {len(seeds)} seeds; discriminator: its "
            f"training accuracy in the last epoch; probe: balanced accuracy of a fresh task probe on the test "
            f"shared features (chance {chance:.0f}%)",
            "",
            "| method | " + " | ".join(tasks) + " | mean | discriminator | probe | mean abs(s) | time (s) |",
            "|---" * (len(tasks) + 6) + "|",
        ]
        for method in METHODS:
            outcomes = [seed[method] for seed in seeds]
            per_task = [_mean_std([o.accuracy[t] for o in outcomes]) for t in tasks]
            mean = _mean_std([statistics.mean(o.accuracy.values()) for o in outcomes])
            disc = _mean_std([o.discriminator for o in outcomes])
            probe = _mean_std([o.probe for o in outcomes])
            magnitudes = [o.magnitude for o in outcomes if not math.isnan(o.magnitude)]
            magnitude = f"{statistics.mean(magnitudes):.3f}" if magnitudes else "—"
            seconds = statistics.mean(o.seconds for o in outcomes)
            cells = [method, *per_task, mean, disc, probe, magnitude, f"{seconds:.0f}"]
            lines.append("| " + " | ".join(cells) + " |")
            rows.append([dataset, *cells])
        lines.append("")
    text = "\n".join(lines)
    output.mkdir(parents=True, exist_ok=True)
    (output / "adversarial_text.md").write_text(text)
    with (output / "adversarial_text.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["dataset", "method", "per-task accuracy ...", "mean", "discriminator", "probe", "|s|", "seconds"]
        )
        writer.writerows(rows)
    return text


def plot(results: Mapping[str, list[dict[str, Outcome]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, len(results), figsize=(4.2 * len(results), 5.6), squeeze=False)
    for column, (dataset, seeds) in enumerate(results.items()):
        num_tasks = len(seeds[0]["single-task"].accuracy)
        for method in METHODS[2:]:
            history = seeds[0][method].history
            epochs = [int(r["epoch"]) + 1 for r in history]
            if method.startswith("ASP"):
                axes[0][column].plot(epochs, [r["adversary/accuracy"] for r in history], marker="o", label=method)
            axes[1][column].plot(epochs, [r["model/orthogonality"] for r in history], marker="o", label=method)
        axes[0][column].axhline(1 / num_tasks, color="grey", linestyle="--", label="chance")
        axes[0][column].set_title(f"{dataset}: discriminator accuracy (train)")
        axes[1][column].set_title(f"{dataset}: Σ_t ‖S_tᵀ H_t‖²_F (train)")
        axes[1][column].set_yscale("log")
        for ax in axes[:, column]:
            ax.set_xlabel("epoch")
            ax.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--dataset", choices=("reviews", "newsgroup", "both"), default="both")
    parser.add_argument("--output", type=Path, default=Path("runs/adversarial_text"))
    parser.add_argument("--newsgroup", type=Path, default=NEWSGROUP, help="folder of the four Newsgroup .mat files")
    parser.add_argument(
        "--max-per-task", type=int, default=10_000, help="subsample each review source to this many (0: all)"
    )
    parser.add_argument("--max-length", type=int, default=200, help="tokens kept per review")
    parser.add_argument("--batch-size", type=int, default=64, help="per task and step")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--activation", choices=tuple(ACTIVATIONS), default="tanh", help="of the encoders' output")
    parser.add_argument("--weight", type=float, default=1.0, help="adversarial loss weight w (Liu et al.: 0.05)")
    parser.add_argument("--schedule", choices=("constant", "dann"), default="constant")
    parser.add_argument("--coefficient", type=float, default=1.0, help="λ of the constant schedule")
    parser.add_argument("--orthogonality", type=float, default=1e-4, help="γ (Liu et al.: 0.01, for LSTM states)")
    parser.add_argument("--discriminator-lr", type=float, default=3e-3, help="alternating scheme's discriminator lr")
    args = parser.parse_args()
    results: dict[str, list[dict[str, Outcome]]] = {}
    started = time.perf_counter()
    for seed in range(args.seeds):
        for setting in settings(args.dataset, seed, args):
            results.setdefault(setting.name, []).append(run_seed(setting, seed, args))
            print(f"{setting.name} seed {seed} done at {time.perf_counter() - started:.0f} s", flush=True)
    if not results:
        raise SystemExit("no data set to run")
    command = " ".join(["python examples/adversarial_text.py", *sys.argv[1:]])
    print(report(results, args.output, command))
    plot(results, args.output / "adversarial_text.png")
    print(f"total {time.perf_counter() - started:.0f} s; wrote {args.output}")


if __name__ == "__main__":
    main()
