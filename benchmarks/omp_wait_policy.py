"""Wall time of the README's ten-line Python example with PyTorch's idle OpenMP threads spinning or sleeping.

PyTorch's OpenMP runtime reads ``OMP_WAIT_POLICY`` once, when torch is imported. ``import multitask``
sets it to ``PASSIVE`` (unless it is set) when torch is not loaded yet; a script that imports torch first
gets the runtime's default, threads that spin while they wait for work. Three ways to start the same
script, each in a fresh interpreter:

- ``torch first``: the README's block as a script that imports torch before multitask (spinning threads);
- ``multitask first``: the same block after ``import multitask`` (what the README now shows);
- ``env PASSIVE``: torch first, with ``OMP_WAIT_POLICY=PASSIVE`` in the environment.

Each is timed ``--repeats`` times on a quiet machine and while ``--busy`` other processes run (``--contender
torch``: a small PyTorch training loop with default settings, another PyTorch job; ``python``: a pure-Python
loop that keeps one core busy): "another process wants a core". The table gives the median wall time and
the ratio to ``multitask first``. Side by side, in one run, alternating the variants.

    python benchmarks/omp_wait_policy.py [--repeats 3] [--busy 2] [--contender torch] [--output FILE.md]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_example() -> str:
    """The README's first Python block, without its imports of multitask (added per variant)."""
    (block, *_) = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    return "\n".join(line for line in block.splitlines() if not line.startswith(("import multitask", "from multitask")))


def scripts(folder: Path) -> dict[str, tuple[Path, dict[str, str]]]:
    body = readme_example()
    imports = (
        "from multitask import Task, Trainer\nfrom multitask.data import ArrayDataset\n"
        "from multitask.models import MLP, HardSharing\n"
    )
    torch_first = folder / "torch_first.py"
    torch_first.write_text("import torch\nfrom torch import nn\n" + imports + body + "\n")
    multitask_first = folder / "multitask_first.py"
    multitask_first.write_text(imports + "import torch\nfrom torch import nn\n" + body + "\n")
    quiet = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    return {
        "torch first": (torch_first, quiet),
        "multitask first": (multitask_first, quiet),
        "env PASSIVE": (torch_first, {**quiet, "OMP_WAIT_POLICY": "PASSIVE"}),
    }


# What the other processes run: a pure-Python loop (one core each), or a small PyTorch training loop
# with PyTorch's default threads (another PyTorch job on the machine, the usual case).
BUSY = {
    "python": "while True: pass",
    "torch": (
        "import torch\nm = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 1))\n"
        "o = torch.optim.Adam(m.parameters())\nx = torch.randn(256, 64)\n"
        "while True:\n    o.zero_grad()\n    m(x).square().mean().backward()\n    o.step()\n"
    ),
}


def run(script: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, str(script)], env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--busy", type=int, default=1, help="busy processes in the contended runs")
    parser.add_argument("--contender", choices=sorted(BUSY), default="torch", help="what the busy processes run")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    lines = [
        f"README example (`{sys.executable} script.py`), median of {args.repeats} runs, seconds; "
        f"{os.cpu_count()} cores; torch threads default.",
        "",
        "| machine | variant | median s | runs | ratio to multitask first |",
        "|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        variants = scripts(Path(tmp))
        for label, busy in (("quiet", 0), (f"{args.busy} busy {args.contender} process(es)", args.busy)):
            burners = [subprocess.Popen([sys.executable, "-c", BUSY[args.contender]]) for _ in range(busy)]
            try:
                times: dict[str, list[float]] = {name: [] for name in variants}
                for _ in range(args.repeats):
                    for name, (script, env) in variants.items():
                        times[name].append(run(script, env))
            finally:
                for burner in burners:
                    burner.kill()
                    burner.wait()
            base = statistics.median(times["multitask first"])
            for name, values in times.items():
                median = statistics.median(values)
                runs = ", ".join(f"{v:.1f}" for v in values)
                lines.append(f"| {label} | {name} | {median:.1f} | {runs} | {median / base:.2f}× |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.output is not None:
        args.output.write_text(text)


if __name__ == "__main__":
    main()
