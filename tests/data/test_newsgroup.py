"""The Newsgroup loader: small .mat files written here, and MALSAR's files when ../shared/data is present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
import scipy.sparse
import torch

from multitask.data import load_newsgroup
from multitask.data._newsgroup import NEWSGROUP_FILES
from multitask.errors import ConfigError, DataError

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "newsgroup"


def write_files(folder: Path, n: int = 20, d: int = 6) -> Path:
    rng = np.random.default_rng(0)
    for index, name in enumerate(NEWSGROUP_FILES.values()):
        counts = rng.integers(0, 3, size=(n, d)).astype(float)
        counts[:, index] += 1  # every post of file i uses word i
        gnd = np.where(np.arange(n) % 2 == 0, 1, 2).astype(np.uint8).reshape(-1, 1)
        scipy.io.savemat(folder / name, {"fea": scipy.sparse.csc_matrix(counts), "gnd": gnd})
    return folder


def test_four_tasks_with_labels_from_gnd_and_seeded_splits(tmp_path: Path) -> None:
    data = load_newsgroup(write_files(tmp_path), features="counts", val_fraction=0.1, test_fraction=0.25)
    assert data.tasks == list(NEWSGROUP_FILES)
    assert isinstance(data.train, dict) and isinstance(data.test, dict) and isinstance(data.val, dict)
    assert {len(d) for d in data.train.values()} == {13} and {len(d) for d in data.test.values()} == {5}
    assert {len(d) for d in data.val.values()} == {2}
    first = "comp_vs_sci_1"
    everything = torch.cat([getattr(data, s)[first].columns[first] for s in ("train", "val", "test")])
    assert sorted(everything.tolist()) == [0.0] * 10 + [1.0] * 10  # gnd 1 → 0, gnd 2 → 1
    x = data.train[first].columns["x"]
    assert x.dtype == torch.float32 and x.shape == (13, 6)
    assert float(x.sum()) == float(x.round().sum())  # counts as stored
    again = load_newsgroup(tmp_path, features="counts", val_fraction=0.1, test_fraction=0.25)
    assert torch.equal(again.test[first].columns["x"], data.test[first].columns["x"])


def test_tfidf_rows_have_unit_norm_and_weight_rare_words_up(tmp_path: Path) -> None:
    data = load_newsgroup(write_files(tmp_path))
    assert isinstance(data.train, dict)
    x = data.train["rec_vs_talk_2"].columns["x"]
    torch.testing.assert_close(x.norm(dim=1), torch.ones(len(x)))
    # log(1 + c) · idf with idf = log((1 + m) / (1 + df)) + 1: check one entry by hand
    raw = load_newsgroup(tmp_path, features="counts")
    assert isinstance(raw.train, dict)
    counts = torch.cat([d.columns["x"] for d in raw.train.values()]).double()
    m, df = counts.shape[0], (counts > 0).sum(dim=0).double()
    idf = torch.log((1 + m) / (1 + df)) + 1
    row = raw.train["rec_vs_talk_2"].columns["x"][0].double()
    expected = torch.log1p(row) * idf
    torch.testing.assert_close(x[0].double(), expected / expected.norm(), rtol=1e-5, atol=1e-6)


def test_missing_files_and_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="lacks"):
        load_newsgroup(tmp_path)
    with pytest.raises(ConfigError, match="features must be"):
        load_newsgroup(tmp_path, features="bm25")


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"{SHARED} is absent (the shared data folder of the project)")
def test_the_real_newsgroup_files() -> None:
    data = load_newsgroup(SHARED)
    assert isinstance(data.train, dict) and isinstance(data.test, dict)
    sizes = {name: sum(len(getattr(data, s)[name]) for s in ("train", "val", "test")) for name in data.tasks}
    assert sizes == {"comp_vs_sci_1": 1875, "comp_vs_sci_2": 1827, "rec_vs_talk_1": 1844, "rec_vs_talk_2": 1545}
    assert data.num_features == 2000
