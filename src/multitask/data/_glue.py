"""GLUE: the nine sentence(-pair) tasks as multi-input data, from the original TSV files or a `datasets` save."""

from __future__ import annotations

import csv
import importlib
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from multitask.data._dataset import ArrayDataset, hold_out
from multitask.data._images import require_dir
from multitask.data._mtdata import MultiTaskData, TaskInfo
from multitask.data._registry import register
from multitask.data._tabular import StrPath
from multitask.errors import ConfigError, DataError

PAD, UNKNOWN, SEPARATOR = 0, 1, 2
_TOKEN = re.compile(r"\w+|[^\w\s]")


@dataclass(frozen=True)
class _GlueTask:
    folder: str  # folder of the GLUE download (glue_data/<folder>)
    hf_name: str  # configuration name in the `datasets` library
    text: tuple[str | int, ...]  # the sentence columns (header names, or positions when there is no header)
    label: str | int
    labels: tuple[str, ...]  # label values in class order; () for regression
    test_file: str = "dev.tsv"
    header: bool = True


#: The GLUE tasks: where their sentences and labels are in the TSV files of the GLUE download.
GLUE_TASKS = {
    "cola": _GlueTask("CoLA", "cola", (3,), 1, ("0", "1"), header=False),
    "sst2": _GlueTask("SST-2", "sst2", ("sentence",), "label", ("0", "1")),
    "mrpc": _GlueTask("MRPC", "mrpc", ("#1 String", "#2 String"), "Quality", ("0", "1")),
    "qqp": _GlueTask("QQP", "qqp", ("question1", "question2"), "is_duplicate", ("0", "1")),
    "stsb": _GlueTask("STS-B", "stsb", ("sentence1", "sentence2"), "score", ()),
    "mnli": _GlueTask(
        "MNLI",
        "mnli",
        ("sentence1", "sentence2"),
        "gold_label",
        ("entailment", "neutral", "contradiction"),
        test_file="dev_matched.tsv",
    ),
    "qnli": _GlueTask("QNLI", "qnli", ("question", "sentence"), "label", ("entailment", "not_entailment")),
    "rte": _GlueTask("RTE", "rte", ("sentence1", "sentence2"), "label", ("entailment", "not_entailment")),
    "wnli": _GlueTask("WNLI", "wnli", ("sentence1", "sentence2"), "label", ("0", "1")),
}
_LAYOUT = "ROOT/<Task>/{train,dev}.tsv as the GLUE download writes them (CoLA, SST-2, MRPC, QQP, STS-B, MNLI, ...)"
_HF_TEXT = {  # the `datasets` library's column names
    "cola": ("sentence",),
    "sst2": ("sentence",),
    "mrpc": ("sentence1", "sentence2"),
    "qqp": ("question1", "question2"),
    "stsb": ("sentence1", "sentence2"),
    "mnli": ("premise", "hypothesis"),
    "qnli": ("question", "sentence"),
    "rte": ("sentence1", "sentence2"),
    "wnli": ("sentence1", "sentence2"),
}


def tokenize(text: str) -> list[str]:
    """Lower-cased word and punctuation tokens."""
    return _TOKEN.findall(text.lower())


def _read_tsv(path: Path, spec: _GlueTask) -> tuple[list[list[str]], list[str]]:
    """``(texts per example, labels)`` from one GLUE TSV file; rows of the wrong width are skipped (QQP has a few)."""
    if not path.is_file():
        raise DataError(f"GLUE: {path} not found; expected layout: {_LAYOUT}")
    with path.open(encoding="utf-8", newline="") as file:
        rows = list(csv.reader(file, delimiter="\t", quoting=csv.QUOTE_NONE))
    if spec.header:
        if not rows:
            raise DataError(f"GLUE: {path} is empty")
        header, rows = rows[0], rows[1:]
        missing = [c for c in (*spec.text, spec.label) if c not in header]
        if missing:
            raise DataError(f"GLUE: {path} has no column(s) {missing}; its header is {header}")
        positions = [header.index(str(c)) for c in spec.text]
        label_at = header.index(str(spec.label))
        width = len(header)
    else:
        positions, label_at = [int(c) for c in spec.text], int(spec.label)
        width = max([*positions, label_at]) + 1
    texts = [[row[p] for p in positions] for row in rows if len(row) >= width]
    labels = [row[label_at] for row in rows if len(row) >= width]
    if not texts:
        raise DataError(f"GLUE: {path} has no row with {width} tab-separated fields")
    return texts, labels


def _from_datasets(root: Path, name: str, spec: _GlueTask) -> dict[str, tuple[list[list[str]], list[str]]]:
    """Train and test (= validation) examples of a `datasets` DatasetDict saved with ``save_to_disk``."""
    try:
        datasets = importlib.import_module("datasets")
    except ImportError:
        raise DataError(
            f"GLUE {name}: {root} is not in the TSV layout ({_LAYOUT}); to read a `datasets` save_to_disk folder "
            "instead, install the `datasets` library (`pip install datasets`)"
        ) from None
    saved = datasets.load_from_disk(str(root / spec.hf_name))
    out = {}
    for split, hf_split in (("train", "train"), ("test", "validation_matched" if name == "mnli" else "validation")):
        part = saved[hf_split]
        texts = [[str(part[column][i]) for column in _HF_TEXT[name]] for i in range(len(part))]
        labels = [str(value) for value in part["label"]]
        if spec.labels:  # `datasets` stores class indices; map them to the TSV label values
            labels = [spec.labels[int(value)] for value in labels]
        out[split] = (texts, labels)
    return out


@register(
    "glue",
    tasks={"cola": "binary", "sst2": "binary", "mrpc": "binary", "stsb": "regression", "rte": "binary"},
    input="tokens",
    multi_input=True,
    paths=("root",),
    task_arguments=("tasks",),
    description="GLUE sentence(-pair) tasks, one dataset each, token ids (default: CoLA, SST-2, MRPC, STS-B, RTE)",
)
def load_glue(
    root: StrPath,
    *,
    tasks: Sequence[str] = ("cola", "sst2", "mrpc", "stsb", "rte"),
    max_length: int = 128,
    max_vocabulary: int = 30_000,
    val_fraction: float = 0.1,
    seed: int = 0,
) -> MultiTaskData:
    """GLUE (Wang et al. 2019) tasks as multi-input data: one dataset per task, token ids padded to ``max_length``.

    Reads, per task, ``root/<Task>/train.tsv`` and ``dev.tsv`` (``dev_matched.tsv`` for MNLI) as the GLUE
    download writes them. When a task folder is missing and the ``datasets`` library is installed,
    ``root/<name>`` is read with ``datasets.load_from_disk`` (a ``DatasetDict`` saved by ``save_to_disk``,
    e.g. of ``load_dataset("glue", name)``), so no download happens here.

    GLUE's test labels are hidden, so each task's dev set is its test split and ``val_fraction`` of its
    training set (seeded) the validation split. Text: lower-cased word and punctuation tokens (`tokenize`);
    a sentence pair is ``first [SEP] second``. The vocabulary is the ``max_vocabulary - 3`` most frequent
    training tokens over the chosen tasks; ids: 0 padding, 1 unknown, 2 separator. Columns ``tokens``
    (int64 ``[N, max_length]``, truncated or padded) and the task's label: binary 0/1 float32 (CoLA, SST-2,
    MRPC, QQP, QNLI, RTE, WNLI; QNLI and RTE: 1 = not_entailment), MNLI 3-class (entailment, neutral,
    contradiction), STS-B a float score 0-5. Vocabulary size in ``num_embeddings["tokens"]``.

    Args:
        root: The GLUE folder.
        tasks: Task names among `GLUE_TASKS` (default: five small ones).
        max_length: Tokens per example.
        max_vocabulary: Vocabulary size, including the three special ids.
        val_fraction: Fraction of each training set held out for validation.
        seed: Seed of that split.

    Raises:
        ConfigError: An unknown task or bad sizes.
        DataError: A file is missing or malformed, or a label value is unknown.

    References:
        Wang et al., "GLUE: A Multi-Task Benchmark and Analysis Platform for Natural Language Understanding",
        ICLR 2019.
    """
    unknown = [t for t in tasks if t not in GLUE_TASKS]
    if unknown or not tasks:
        raise ConfigError(f"unknown GLUE task(s) {unknown or tasks}; choose from {sorted(GLUE_TASKS)}")
    if max_length < 1 or max_vocabulary < 4 or not 0 < val_fraction < 1:
        raise ConfigError("need max_length >= 1, max_vocabulary >= 4 and 0 < val_fraction < 1")
    root = require_dir(Path(root), "GLUE", _LAYOUT)
    raw: dict[str, dict[str, tuple[list[list[str]], list[str]]]] = {}
    for name in tasks:
        spec = GLUE_TASKS[name]
        folder = root / spec.folder
        if folder.is_dir():
            raw[name] = {
                "train": _read_tsv(folder / "train.tsv", spec),
                "test": _read_tsv(folder / spec.test_file, spec),
            }
        elif (root / spec.hf_name).is_dir():
            raw[name] = _from_datasets(root, name, spec)
        else:
            raise DataError(
                f"GLUE {name}: neither {folder} (TSV files) nor {root / spec.hf_name} (a `datasets` save_to_disk "
                f"folder) exists; expected layout: {_LAYOUT}"
            )
    counts: Counter[str] = Counter()
    for parts in raw.values():
        for text in parts["train"][0]:
            for sentence in text:
                counts.update(tokenize(sentence))
    vocabulary = {token: i + 3 for i, (token, _) in enumerate(counts.most_common(max_vocabulary - 3))}

    def encode(texts: list[list[str]]) -> torch.Tensor:
        ids = np.zeros((len(texts), max_length), dtype=np.int64)
        for row, text in enumerate(texts):
            tokens: list[int] = []
            for k, sentence in enumerate(text):
                tokens += ([SEPARATOR] if k else []) + [vocabulary.get(t, UNKNOWN) for t in tokenize(sentence)]
            tokens = tokens[:max_length]
            ids[row, : len(tokens)] = tokens
        return torch.from_numpy(ids)

    splits: list[dict[str, ArrayDataset]] = [{}, {}, {}]
    infos = {}
    rng = np.random.default_rng(seed)
    for name, parts in raw.items():
        spec = GLUE_TASKS[name]
        encoded = {}
        for split, (texts, labels) in parts.items():
            encoded[split] = ArrayDataset(tokens=encode(texts), **{name: _labels(name, spec, labels, split)})
        splits[0][name], splits[1][name] = hold_out(encoded["train"], val_fraction, rng, f"GLUE {name}")
        splits[2][name] = encoded["test"]
        if not spec.labels:
            infos[name] = TaskInfo(name, "regression", 1, description="similarity 0-5")
        elif len(spec.labels) == 2:
            infos[name] = TaskInfo(name, "binary", 1, classes=spec.labels, description=f"1 = {spec.labels[1]}")
        else:
            infos[name] = TaskInfo(name, "multiclass", len(spec.labels), classes=spec.labels)
    return MultiTaskData(
        train=splits[0],
        val=splits[1],
        test=splits[2],
        task_info=infos,
        num_embeddings={"tokens": len(vocabulary) + 3},
        name="GLUE",
        source="GLUE (Wang et al. 2019), TSV files of the GLUE download or a `datasets` save, from ROOT",
        licence="per task (e.g. SST-2, QQP, MNLI: see the GLUE site); research use",
        preprocessing=f"lower-cased word tokens, vocabulary of {max_vocabulary} from training text, length "
        f"{max_length}; dev = test split",
    )


def _labels(name: str, spec: _GlueTask, labels: list[str], split: str) -> torch.Tensor:
    if not spec.labels:
        try:
            return torch.tensor([float(v) for v in labels], dtype=torch.float32)
        except ValueError as error:
            raise DataError(f"GLUE {name} {split}: a score is not a number ({error})") from None
    index = {value: i for i, value in enumerate(spec.labels)}
    bad = sorted({v for v in labels if v not in index})
    if bad:
        raise DataError(f"GLUE {name} {split}: unknown label value(s) {bad[:5]}; expected {list(spec.labels)}")
    codes = torch.tensor([index[v] for v in labels])
    return codes.float() if len(spec.labels) == 2 else codes
