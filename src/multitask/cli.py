"""The command line: ``multitask demo``, ``train CONFIG``, ``evaluate RUN_DIR``, ``report RUN_DIR``, ``bench``."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from multitask.errors import MultitaskError

# Importing anything from multitask (errors, above) has set OMP_WAIT_POLICY=PASSIVE unless the user set it:
# torch is imported later and lazily, so its idle OpenMP threads sleep (see multitask/__init__.py).


def _version() -> str:
    from multitask import __version__

    return __version__


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="multitask",
        description="Multi-task learning on PyTorch: train, compare with single-task baselines, evaluate.",
    )
    parser.add_argument("--version", action="version", version=f"multitask {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser("demo", help="single-task vs multi-task models on Census-Income (income, never married)")
    demo.add_argument("--output", type=Path, default=None, help="run folder (default: runs/census-demo)")
    demo.add_argument("--epochs", type=int, default=None, help="override the number of epochs")
    demo.add_argument("--max-train-samples", type=int, default=None, help="train on a random subset (faster)")
    train = commands.add_parser("train", help="run the experiment a YAML config describes")
    train.add_argument("config", type=Path, help="YAML config (see docs/config.md)")
    train.add_argument("--output", type=Path, default=None, help="run folder (default: the config's output)")
    train.add_argument(
        "--methods",
        nargs="+",
        default=None,
        help="override compare.methods (stl, mtl or an architecture name), e.g. --methods stl mtl mmoe",
    )
    train.add_argument(
        "--transfer",
        nargs="+",
        metavar="SOURCE:TARGET",
        default=None,
        help="add transfer baselines (pretrain on SOURCE, fine-tune on TARGET), e.g. --transfer income:marital",
    )
    train.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=None,
        metavar="SEED",
        help="override analysis.seeds: train every method once per seed and judge negative transfer per task",
    )
    group = train.add_mutually_exclusive_group()
    group.add_argument("--resume", action="store_true", help="continue an interrupted run from its checkpoints")
    group.add_argument("--overwrite", action="store_true", help="delete the run folder's previous content first")
    train.add_argument(
        "--nproc",
        type=int,
        default=None,
        metavar="N",
        help="train in N processes on this machine (torchrun; gloo on CPUs, nccl on GPUs: one GPU each)",
    )
    evaluate = commands.add_parser("evaluate", help="re-evaluate the models saved in a run folder")
    evaluate.add_argument("run_dir", type=Path, help="folder written by `multitask train` or `multitask demo`")
    evaluate.add_argument(
        "--split",
        choices=["test", "val"],
        default="test",
        help="which split of the run's data to evaluate on (default: test; val: the validation split)",
    )
    report = commands.add_parser("report", help="write a self-contained HTML report of a run folder")
    report.add_argument("run_dir", type=Path, help="folder written by `multitask train`, `multitask demo` or a Trainer")
    report.add_argument("--output", type=Path, default=None, help="HTML file to write (default: RUN_DIR/report.html)")
    bench = commands.add_parser("bench", help="run a benchmark grid (datasets × methods × architectures × seeds)")
    bench.add_argument("config", type=Path, help="benchmark YAML (e.g. benchmarks/configs/census_mmoe.yaml)")
    bench.add_argument("--output", type=Path, default=None, help="output folder (default: runs/bench-CONFIG_NAME)")
    bench.add_argument("--quick", action="store_true", help="smoke profile: one seed, two short epochs, 512 rows")
    bench.add_argument("--jobs", type=int, default=None, help="worker processes (default: the CPU cores)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (errors print one line to stderr and return 2)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(arguments)
    try:
        if args.command == "demo":
            return _demo(args)
        if args.command == "train":
            if args.nproc is not None:
                return _launch(arguments, args.nproc)
            return _train(args)
        if args.command == "report":
            return _report(args)
        if args.command == "bench":
            return _bench(args)
        return _evaluate(args)
    except MultitaskError as error:
        print(f"multitask: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # the machine's side: an unreadable file, a full disk, a missing device
        where = f"{error.filename}: " if error.filename else ""
        print(f"multitask: error: {where}{error.strerror or error}", file=sys.stderr)
        return 2
    except UnicodeDecodeError as error:
        print(f"multitask: error: a file is not UTF-8 text (byte {error.start}): save it as UTF-8", file=sys.stderr)
        return 2
    except MemoryError:
        print("multitask: error: out of memory: use smaller batches, layers or data", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("multitask: interrupted; continue with --resume", file=sys.stderr)
        return 130


def _demo(args: argparse.Namespace) -> int:
    import yaml

    from multitask.config import parse_config

    raw = yaml.safe_load(resources.files("multitask").joinpath("configs/census_demo.yaml").read_text())
    if args.epochs is not None:
        raw["training"]["epochs"] = args.epochs
    if args.max_train_samples is not None:
        raw["data"]["max_train_samples"] = args.max_train_samples
    config = parse_config(raw, source="demo config")
    print(
        "Census-Income (KDD): income > 50K and 'never married'; single-task models vs multi-task models "
        f"({', '.join(m for m in raw['compare']['methods'] if m != 'stl')})"
    )
    return _run(config, args.output, resume=False, overwrite=True)


def _train(args: argparse.Namespace) -> int:
    from multitask.config import load_config, parse_config

    config = load_config(args.config)
    if args.methods is not None or args.transfer is not None or args.seeds is not None:
        compare = config.compare.model_dump()
        if args.methods is not None:
            compare["methods"] = args.methods
        if args.transfer is not None:
            compare["transfer"] = [_pair(text) for text in args.transfer]
        analysis = config.analysis.model_dump(mode="json")
        if args.seeds is not None:
            analysis["seeds"] = args.seeds
        raw = config.model_dump(mode="json") | {"compare": compare, "analysis": analysis}
        config = parse_config(raw, base_dir=Path(), source="command line")
    return _run(config, args.output, resume=args.resume, overwrite=args.overwrite)


def _launch(arguments: list[str], nproc: int) -> int:
    """``multitask train ... --nproc N``: run the same command in N processes under torchrun."""
    import subprocess

    from multitask.errors import ConfigError
    from multitask.training.distributed import environment_world_size, torchrun_command

    if environment_world_size() > 1:
        raise ConfigError("--nproc launches the processes; this one already runs under torchrun (WORLD_SIZE is set)")
    rest, skip = [], False
    for argument in arguments:  # the same command without --nproc (or an abbreviation argparse accepted)
        name = argument.split("=", 1)[0]
        if skip or (len(name) > 3 and "--nproc".startswith(name)):
            skip = not skip and "=" not in argument
            continue
        rest.append(argument)
    command = ["-m", "multitask.cli", *rest]
    if nproc == 1:
        return main(rest)
    return subprocess.run(torchrun_command(command, nproc), check=False).returncode


def _pair(text: str) -> list[str]:
    from multitask.errors import ConfigError

    parts = text.split(":")
    if len(parts) != 2 or not all(parts):
        raise ConfigError(f"--transfer takes SOURCE:TARGET task names; got {text!r}")
    return parts


class _Console(logging.Handler):
    """The ``multitask`` logger on the console: INFO lines (e.g. one per finished training when there are no
    progress bars) on standard output, warnings and errors on standard error. The streams are looked up
    at each record, so a replaced ``sys.stdout`` (a test's capture) is honoured."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if record.levelno < logging.WARNING:
                print(record.getMessage(), file=sys.stdout, flush=True)
            else:
                print(f"multitask: warning: {record.getMessage()}", file=sys.stderr, flush=True)
        except Exception:  # logging must never break the run
            self.handleError(record)


def _log_to_console() -> None:
    logger = logging.getLogger("multitask")
    if not any(isinstance(handler, _Console) for handler in logger.handlers):
        logger.addHandler(_Console(logging.INFO))
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)


def _run(config: object, output: Path | None, *, resume: bool, overwrite: bool) -> int:
    from multitask.config import ExperimentConfig
    from multitask.experiment import output_dir, run_experiment
    from multitask.layout import GROUPS, TRANSFER_MARKDOWN, RunLayout

    assert isinstance(config, ExperimentConfig)
    _log_to_console()
    started = time.perf_counter()
    comparison = run_experiment(config, output=output, resume=resume, overwrite=overwrite)
    seconds = time.perf_counter() - started
    from multitask.training.distributed import is_main_process

    if not is_main_process():  # multi-process run: rank 0 reports
        return 0
    print()
    print(comparison.to_markdown())
    print()
    others = [m for m in comparison.methods if m != comparison.baseline and m in comparison.results]
    if comparison.baseline not in comparison.results:
        print(f"Δm% needs the single-task models: add {comparison.baseline} to compare.methods (or --methods stl ...)")
    else:
        for method in others:
            print(f"Δm% of {method} against single-task models: {comparison.delta_m(method):+.2f}")
    directory = output_dir(config, output)
    run = RunLayout(directory)
    if config.analysis.seeds:
        print(f"(means over seeds {', '.join(map(str, config.analysis.seeds))})")
    for method in run.judged_methods():
        verdicts = run.negative_transfer(method) / TRANSFER_MARKDOWN
        if verdicts.is_file():
            print(f"\nNegative transfer of {method} ({verdicts}):\n{verdicts.read_text().rstrip()}")
    folders = [run, *(run.seed(seed) for seed in run.seeds())]
    grouping = next((folder.grouping for folder in folders if folder.grouping.is_file()), None)
    if grouping is not None:  # the same groups in every seed's folder
        import json

        groups = json.loads(grouping.read_text())["groups"]
        print(f"\ntask groups trained (method {GROUPS}): " + " | ".join("{" + ", ".join(g) + "}" for g in groups))
    if run.pareto_front.is_file():
        print(f"trade-off front: {run.pareto_plot}")
    written = f"report {run.report}" if config.analysis.report else f"results in {directory}"
    print(f"wall time: {seconds:.1f} s; {written}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from multitask.experiment import evaluate_run

    comparison = evaluate_run(args.run_dir, split=args.split)
    print(comparison.to_markdown())
    return 0


def _report(args: argparse.Namespace) -> int:
    from multitask.analysis import build_report

    print(f"report written to {build_report(args.run_dir, args.output)}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from multitask.experiment.bench import default_jobs, load_bench_config, print_progress, run_bench

    config = load_bench_config(args.config, quick=args.quick)
    output = args.output or Path("runs") / f"bench-{args.config.stem}{'-quick' if args.quick else ''}"
    jobs = args.jobs if args.jobs is not None else default_jobs()
    if jobs < 1:
        raise MultitaskError(f"--jobs must be at least 1; got {jobs}")
    started = time.perf_counter()
    result = run_bench(config, output, jobs=jobs, progress=print_progress)
    print(result.markdown)
    print(f"{len(result.records)} cells in {time.perf_counter() - started:.0f} s; tables and plot in {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
