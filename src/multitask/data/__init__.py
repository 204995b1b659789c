"""Datasets and multi-task batching: in-memory tables, task samplers, bundled and public data loaders."""

from multitask.data._adult import load_adult
from multitask.data._augment import ImageAugmentation
from multitask.data._celeba import load_celeba
from multitask.data._census import load_census_income
from multitask.data._cityscapes import load_cityscapes
from multitask.data._csv import read_csv_columns
from multitask.data._dataset import ArrayDataset, Batch, as_array_dataset
from multitask.data._external import LoaderSteps, MultiLoaderSteps, stream_loader
from multitask.data._folders import load_imagenet, load_office31, load_office_home
from multitask.data._glue import load_glue
from multitask.data._image_folder import load_image_folder
from multitask.data._lazy import LazyDataset
from multitask.data._loaders import MultiInputLoader, Sampling, SingleInputLoader, Step, TaskSchedule, iter_batches
from multitask.data._mlmrev import load_gcsemv, load_school_groups
from multitask.data._mnist import (
    load_fashion_mnist,
    load_mnist,
    load_multi_fashion,
    load_multi_mnist,
    load_multi_mnist_and_fashion,
)
from multitask.data._movielens import load_movielens_100k
from multitask.data._mtdata import MultiTaskData, Split, TaskInfo, combine
from multitask.data._newsgroup import load_newsgroup
from multitask.data._nyuv2 import load_nyuv2
from multitask.data._pipeline import (
    BatchReader,
    EpochSampler,
    LoaderOptions,
    Request,
    Transform,
    as_batch,
    batch_seed,
    collate,
    is_map_dataset,
)
from multitask.data._registry import DatasetInfo, LoadedData, create, info, names, register
from multitask.data._synthetic import gradnorm_regression
from multitask.data._tabular import TabularData, TabularEncoder, load_tabular
from multitask.data._targets import TargetSpec
from multitask.data._text import TextTokenizer, Vocabulary, load_movie_reviews, tokenize, tokenize_with
from multitask.data._text_tasks import load_reviews_and_tweets, load_trump_tweets
from multitask.data._yeast import load_yeast

__all__ = [
    "ArrayDataset",
    "Batch",
    "BatchReader",
    "DatasetInfo",
    "EpochSampler",
    "ImageAugmentation",
    "LazyDataset",
    "LoadedData",
    "LoaderOptions",
    "LoaderSteps",
    "MultiInputLoader",
    "MultiLoaderSteps",
    "MultiTaskData",
    "Request",
    "Sampling",
    "SingleInputLoader",
    "Split",
    "Step",
    "TabularData",
    "TabularEncoder",
    "TargetSpec",
    "TaskInfo",
    "TaskSchedule",
    "TextTokenizer",
    "Transform",
    "Vocabulary",
    "as_array_dataset",
    "as_batch",
    "batch_seed",
    "collate",
    "combine",
    "create",
    "gradnorm_regression",
    "info",
    "is_map_dataset",
    "iter_batches",
    "load_adult",
    "load_celeba",
    "load_census_income",
    "load_cityscapes",
    "load_fashion_mnist",
    "load_gcsemv",
    "load_glue",
    "load_image_folder",
    "load_imagenet",
    "load_mnist",
    "load_movie_reviews",
    "load_movielens_100k",
    "load_multi_fashion",
    "load_multi_mnist",
    "load_multi_mnist_and_fashion",
    "load_newsgroup",
    "load_nyuv2",
    "load_office31",
    "load_office_home",
    "load_reviews_and_tweets",
    "load_school_groups",
    "load_tabular",
    "load_trump_tweets",
    "load_yeast",
    "names",
    "read_csv_columns",
    "register",
    "stream_loader",
    "tokenize",
    "tokenize_with",
]
