"""Datasets and multi-task batching: in-memory tables, task samplers, bundled and public data loaders."""

from multitask.data._census import load_census_income
from multitask.data._dataset import ArrayDataset
from multitask.data._loaders import MultiInputLoader, SingleInputLoader
from multitask.data._synthetic import gradnorm_regression
from multitask.data._tabular import TabularData, TabularEncoder, load_tabular, read_csv_columns
from multitask.data._targets import TargetSpec

__all__ = [
    "ArrayDataset",
    "MultiInputLoader",
    "SingleInputLoader",
    "TabularData",
    "TabularEncoder",
    "TargetSpec",
    "gradnorm_regression",
    "load_census_income",
    "load_tabular",
    "read_csv_columns",
]
