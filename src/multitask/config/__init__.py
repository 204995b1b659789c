"""The experiment config schema (YAML), validated up front; errors name the field and the allowed values.

Configs are data: they are read with ``yaml.safe_load`` and checked by pydantic models that forbid
unknown keys, so a config can never execute code. One module per section (``data``, ``tasks``,
``model``, ``strategy``, ``training``, ``compare``/``linear``/``analysis``); `ExperimentConfig` holds the
rules across sections, which ask the registries (`multitask.models.info`, `multitask.data.info`) what each
architecture and dataset declares; `describe_error` turns a validation error into one line.
"""

from multitask.config._analysis import (
    AnalysisConfig,
    CompareConfig,
    GroupsConfig,
    LinearConfig,
    LinearPenalty,
    ParetoConfig,
)
from multitask.config._common import LayerSizes, ParamValue, Seed
from multitask.config._data import (
    CensusDataConfig,
    CSVDataConfig,
    DataConfig,
    ImageFolderDataConfig,
    ImageTransformConfig,
    MultiMnistDataConfig,
    NewsgroupDataConfig,
    NYUv2DataConfig,
)
from multitask.config._data_base import DataSection, TextDataSection
from multitask.config._data_text import MovieReviewsDataConfig, ReviewsAndTweetsDataConfig, TrumpTweetsDataConfig
from multitask.config._encoders import (
    BagOfEmbeddingsConfig,
    CNNConfig,
    EncoderConfig,
    MLPConfig,
    TransformerEncoderConfig,
)
from multitask.config._errors import describe_error
from multitask.config._experiment import ExperimentConfig
from multitask.config._loading import load_config, parse_config
from multitask.config._model import (
    ARCHITECTURE_PARAMS,
    ARCHITECTURES,
    METHODS,
    SHARED_FEATURES,
    ModelConfig,
    readers_of,
)
from multitask.config._strategy import AdversaryConfig, StrategyConfig
from multitask.config._tasks import HeadConfig, TaskConfig
from multitask.config._training import OptimizerConfig, SchedulerConfig, TrainingConfig

__all__ = [
    "ARCHITECTURES",
    "ARCHITECTURE_PARAMS",
    "METHODS",
    "SHARED_FEATURES",
    "AdversaryConfig",
    "AnalysisConfig",
    "BagOfEmbeddingsConfig",
    "CNNConfig",
    "CSVDataConfig",
    "CensusDataConfig",
    "CompareConfig",
    "DataConfig",
    "DataSection",
    "EncoderConfig",
    "ExperimentConfig",
    "GroupsConfig",
    "HeadConfig",
    "ImageFolderDataConfig",
    "ImageTransformConfig",
    "LayerSizes",
    "LinearConfig",
    "LinearPenalty",
    "MLPConfig",
    "ModelConfig",
    "MovieReviewsDataConfig",
    "MultiMnistDataConfig",
    "NYUv2DataConfig",
    "NewsgroupDataConfig",
    "OptimizerConfig",
    "ParamValue",
    "ParetoConfig",
    "ReviewsAndTweetsDataConfig",
    "SchedulerConfig",
    "Seed",
    "StrategyConfig",
    "TaskConfig",
    "TextDataSection",
    "TrainingConfig",
    "TransformerEncoderConfig",
    "TrumpTweetsDataConfig",
    "describe_error",
    "load_config",
    "parse_config",
    "readers_of",
]
