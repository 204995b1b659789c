"""``python _killable_run.py RUN_DIR [--resume]`` in each process, with torchrun's environment variables set.

The Trainer finds ``RANK``/``WORLD_SIZE``/``MASTER_ADDR``/``MASTER_PORT`` and joins the other
processes by itself; a dead peer ends this process with an uncaught `DistributedError`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from _distributed_cases import resumable_fit

if __name__ == "__main__":
    torch.set_num_threads(1)
    resume = "--resume" in sys.argv
    resumable_fit(Path(sys.argv[1]), None, slow=not resume, resume=resume)
