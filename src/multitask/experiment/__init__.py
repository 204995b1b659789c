"""Running an experiment described by a config: build the data, tasks and models, train, compare, report.

`run_experiment` trains every method of a config into a run folder; `evaluate_run` evaluates a finished
one; `multitask.experiment.bench` runs a grid of datasets × methods × architectures × seeds. The builders
(`load_data`, `build_tasks`, `build_model`, `trainer_options`) are the config's objects for a loop of your own.
"""

from multitask.experiment._build import (
    Encoder,
    build_encoder,
    build_model,
    build_tasks,
    describe_methods,
    trainer_options,
)
from multitask.experiment._evaluate import evaluate_run
from multitask.experiment._inputs import ExperimentData, input_shape, input_size, load_data
from multitask.experiment._run import output_dir, planned_trainings, run_experiment

__all__ = [
    "Encoder",
    "ExperimentData",
    "build_encoder",
    "build_model",
    "build_tasks",
    "describe_methods",
    "evaluate_run",
    "input_shape",
    "input_size",
    "load_data",
    "output_dir",
    "planned_trainings",
    "run_experiment",
    "trainer_options",
]
