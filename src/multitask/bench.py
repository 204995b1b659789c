"""`multitask.experiment.bench` under its former name, kept for one release (the same module object)."""

import sys

from multitask.experiment import bench

sys.modules[__name__] = bench
