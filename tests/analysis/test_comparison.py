"""`Comparison`: seed spread, persistence of std and descriptions, and an honest bar chart (inspected on the Figure)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from matplotlib.container import ErrorbarContainer

from multitask._plots import pyplot, separating_decimals
from multitask.analysis import Comparison
from multitask.errors import DataError

DIRECTIONS = {"income": {"auc": True, "log_loss": False}, "marital": {"auc": True, "log_loss": False}}


def _seed(shift: float) -> Comparison:
    """One seed's results: AUCs 0.99440–0.99460 on marital (the tiny gaps of a real Census-Income run)."""
    return Comparison(
        {
            "stl": {
                "income": {"auc": 0.940 + shift, "log_loss": 0.30 - shift},
                "marital": {"auc": 0.99450 + shift / 100},
            },
            "mtl": {"income": {"auc": 0.935 + shift, "log_loss": 0.31}, "marital": {"auc": 0.99440 + shift / 100}},
            "mmoe": {"income": {"auc": 0.941 + 2 * shift, "log_loss": 0.29}, "marital": {"auc": 0.99460}},
        },
        DIRECTIONS,
        seconds={"stl": 2.0 + shift, "mtl": 1.0, "mmoe": 1.5},
        descriptions={"stl": "one model per task", "mtl": "hard_sharing · weighting ew"} if shift == 0 else None,
    )


SEEDS = [_seed(s) for s in (0.0, 0.002, -0.001)]


@pytest.fixture
def figures() -> Iterator[list[Any]]:
    """Figures made by a test, closed after it."""
    made: list[Any] = []
    yield made
    for figure in made:
        pyplot().close(figure)


def _panel(figure: Any, label: str) -> Any:
    found = [ax for ax in figure.axes if ax.get_label() == label]
    assert len(found) == 1, [ax.get_label() for ax in figure.axes]
    return found[0]


def _bars(ax: Any) -> list[Any]:
    return [patch for container in ax.containers if not isinstance(container, ErrorbarContainer) for patch in container]


def test_mean_std_is_the_sample_std_over_seeds() -> None:
    mean = Comparison.mean(SEEDS)
    assert mean.std is not None
    for method in ("stl", "mtl", "mmoe"):
        for task, metrics in SEEDS[0].results[method].items():
            for metric in metrics:
                values = [c.results[method][task][metric] for c in SEEDS]
                assert mean.results[method][task][metric] == pytest.approx(np.mean(values))
                # ddof=1: the unbiased sample variance, the usual seed error bar from a handful of seeds
                assert mean.spread(method, task, metric) == pytest.approx(np.std(values, ddof=1), abs=1e-15)
    assert mean.descriptions == SEEDS[0].descriptions  # kept from the seeds that have them
    assert Comparison.mean(SEEDS[:1]).std is None  # one seed: no spread


def test_a_value_of_a_single_seed_has_no_spread() -> None:
    other = dataclasses.replace(SEEDS[1], results={**SEEDS[1].results, "extra": {"income": {"auc": 0.9}}})
    mean = Comparison.mean([SEEDS[0], other])
    assert math.isnan(mean.spread("extra", "income", "auc"))
    assert mean.spread("stl", "income", "auc") > 0


def test_new_fields_default_to_none_and_replace_keeps_them() -> None:
    plain = Comparison({"stl": {"a": {"mse": 1.0}}}, {"a": {"mse": False}}, "stl", {"stl": 1.0})
    assert plain.std is None and plain.descriptions is None
    described = dataclasses.replace(Comparison.mean(SEEDS), seconds=None)
    assert described.std is not None and described.descriptions == SEEDS[0].descriptions


def test_results_csv_round_trips_the_std_and_the_descriptions(tmp_path: Any) -> None:
    mean = Comparison.mean(SEEDS)
    mean.write(tmp_path)
    header = (tmp_path / "results.csv").read_text().splitlines()[0]
    assert header == "method,task,metric,value,std"
    again = Comparison.read(tmp_path)
    assert again == mean  # results, directions, baseline, seconds, std and descriptions
    assert Comparison.read(tmp_path / "results.csv") == mean
    markdown = (tmp_path / "results.md").read_text()
    assert "| 0.9403 ± 0.0015 |" in markdown  # stl income auc: mean ± std
    assert "- `mtl`: hard_sharing · weighting ew" in markdown and "ddof = 1" in markdown


def test_without_seeds_results_csv_keeps_four_columns(tmp_path: Any) -> None:
    SEEDS[0].write(tmp_path)
    assert (tmp_path / "results.csv").read_text().splitlines()[0] == "method,task,metric,value"
    again = Comparison.read(tmp_path)
    assert again.std is None and again == SEEDS[0]
    (tmp_path / "comparison.json").unlink()  # a folder written before comparison.json existed
    old = Comparison.read(tmp_path)
    assert old.results == SEEDS[0].results and old.higher_is_better == {} and old.descriptions is None
    with pytest.raises(DataError, match="no "):
        Comparison.read(tmp_path / "missing")


def test_bars_start_at_zero_and_heights_are_the_results(figures: list[Any]) -> None:
    comparison = SEEDS[0]
    figure = comparison.figure()
    figures.append(figure)
    ax = _panel(figure, "marital/auc")  # values 0.99440 .. 0.99460
    assert ax.get_ylim()[0] == 0.0 and ax.get_ylim()[1] > 0.9946
    heights = [bar.get_height() for bar in _bars(ax)]
    assert heights == pytest.approx([0.99450, 0.99440, 0.99460])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["stl", "mtl", "mmoe"]


def test_the_values_written_on_the_bars_are_the_results(figures: list[Any]) -> None:
    figure = SEEDS[0].figure()
    figures.append(figure)
    for task, metric in SEEDS[0].columns():
        ax = _panel(figure, f"{task}/{metric}")
        written = [t.get_text() for t in ax.texts]
        expected = [SEEDS[0].results[m][task][metric] for m in SEEDS[0].methods]
        assert len(set(written)) == len(written)  # enough digits to tell the methods apart
        decimals = len(written[0].split(".")[1])
        assert [float(w) for w in written] == pytest.approx(expected, abs=0.5 * 10.0**-decimals)
    assert [t.get_text() for t in _panel(figure, "marital/auc").texts] == ["0.99450", "0.99440", "0.99460"]


def test_error_bars_appear_exactly_with_a_spread_and_measure_the_std(figures: list[Any]) -> None:
    plain = SEEDS[0].figure()
    figures.append(plain)
    assert not any(isinstance(c, ErrorbarContainer) for ax in plain.axes for c in ax.containers)
    mean = Comparison.mean(SEEDS)
    seeded = mean.figure()
    figures.append(seeded)
    ax = _panel(seeded, "income/auc")
    (errorbars,) = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    segments = errorbars.lines[2][0].get_segments()
    assert len(segments) == 3
    for segment, method in zip(segments, mean.methods, strict=True):
        (x0, low), (x1, high) = segment
        value, std = mean.results[method]["income"]["auc"], mean.spread(method, "income", "auc")
        assert x0 == x1 and (high - low) / 2 == pytest.approx(std) and (high + low) / 2 == pytest.approx(value)
    assert "± 1 sample std" in seeded.get_suptitle()


def test_the_direction_comes_from_higher_is_better(figures: list[Any]) -> None:
    figure = SEEDS[0].figure()
    figures.append(figure)
    assert "higher is better" in _panel(figure, "income/auc").get_ylabel()
    assert "lower is better" in _panel(figure, "income/log_loss").get_ylabel()
    flipped = dataclasses.replace(SEEDS[0], higher_is_better={"income": {"auc": False, "log_loss": True}})
    figure = flipped.figure()
    figures.append(figure)
    assert "lower is better" in _panel(figure, "income/auc").get_ylabel()
    assert "higher is better" in _panel(figure, "income/log_loss").get_ylabel()
    unknown = dataclasses.replace(SEEDS[0], higher_is_better={})
    figure = unknown.figure()
    figures.append(figure)
    assert "better" not in _panel(figure, "income/auc").get_ylabel()
    assert "gain" not in [ax.get_label() for ax in figure.axes]  # no direction, no sign-adjusted gain


def test_the_difference_panel_is_labelled_and_direction_adjusted(figures: list[Any]) -> None:
    figure = SEEDS[0].figure()
    figures.append(figure)
    ax = _panel(figure, "gain")
    assert "difference vs stl" in ax.get_title() and "positive is better" in ax.get_title()
    assert ax.get_ylim()[0] < 0 < ax.get_ylim()[1]
    heights = [bar.get_height() for bar in _bars(ax)]
    stl, mtl = SEEDS[0].results["stl"]["income"], SEEDS[0].results["mtl"]["income"]
    assert heights[0] == pytest.approx(100 * (mtl["auc"] - stl["auc"]) / stl["auc"])  # mtl, income auc
    assert heights[1] == pytest.approx(-100 * (mtl["log_loss"] - stl["log_loss"]) / stl["log_loss"])  # lower better
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["mtl", "mmoe"]


def test_many_panels_wrap_into_rows(figures: list[Any]) -> None:
    tasks = {f"t{k}": {"auc": 0.9, "f1": 0.8} for k in range(4)}  # 8 panels
    comparison = Comparison(
        {"stl": tasks, "mtl": tasks}, {t: {"auc": True, "f1": True} for t in tasks}, descriptions=None
    )
    figure = comparison.figure()
    figures.append(figure)
    panels = [ax for ax in figure.axes if ax.get_label() != "gain"]
    rows = {ax.get_subplotspec().rowspan.start for ax in panels}
    columns = {ax.get_subplotspec().colspan.start for ax in panels}
    assert len(panels) == 8 and rows == {0, 1, 2} and columns == {0, 1, 2}
    small = Comparison({"stl": {"a": {"auc": 0.9}}}, {"a": {"auc": True}}).figure()
    figures.append(small)
    assert figure.get_size_inches()[1] > 2 * small.get_size_inches()[1]


def test_plot_writes_the_figure(tmp_path: Any) -> None:
    path = Comparison.mean(SEEDS).plot(tmp_path / "c.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_separating_decimals_tell_values_apart() -> None:
    assert separating_decimals([0.99440, 0.99450, 0.99460]) == 5
    assert separating_decimals([0.5, 0.7]) == 3  # three significant digits at least
    assert separating_decimals([12345.0, 23456.0]) == 0
    for values in ([0.123456, 0.123457], [0.994449, 0.994451], [1.5, 1.5 + 3e-9]):
        decimals = separating_decimals(values)
        assert len({f"{v:.{decimals}f}" for v in values}) == 2, values
    assert separating_decimals([math.nan]) == 2
