"""The HTML report: sections from a run folder's files, self-contained, real data, and a real headless browser."""

from __future__ import annotations

import dataclasses
import html
import json
import re
from pathlib import Path

import pytest
import torch
from _analysis_runs import report_folder
from torch import nn

import multitask
from _browser import chromium, run_browser
from multitask import Task
from multitask.analysis import GradientConflictMonitor, TaskAffinityMonitor, build_report
from multitask.baselines import compare
from multitask.errors import ConfigError, DataError
from multitask.models import MLP
from multitask.training import TrainerOptions

DESCRIPTIONS = {"stl": "one model per task", "mtl": "hard_sharing · weighting ew", "mmoe": "mmoe · 3 experts"}


def _with_seeds(directory: Path) -> Path:
    """The report folder as a run with two seeds and three methods: ``seed-N/`` results, their means with the
    spread and the methods' descriptions at the top, and a full-length config (the ~100 lines a real run has)."""
    import yaml

    from multitask.analysis import Comparison
    from multitask.config import load_config

    directions = {t: {"mse": False, "mae": False} for t in ("a0", "b0", "adv")}
    seeds = []
    for seed, shift in enumerate((0.0, 0.04)):
        results = {
            method: {t: {"mse": base + 0.1 * k + shift, "mae": 0.8 * base + shift} for k, t in enumerate(directions)}
            for method, base in (("stl", 1.0), ("mtl", 0.9), ("mmoe", 0.95))
        }
        seeds.append(Comparison(results, directions, seconds={"stl": 3.0, "mtl": 1.0, "mmoe": 2.0}))
        seeds[-1].write(directory / f"seed-{seed}")
    Comparison.mean([dataclasses.replace(c, descriptions=DESCRIPTIONS) for c in seeds]).write(directory)
    config = load_config(Path(multitask.__file__).parent / "configs" / "census_demo.yaml").model_dump(mode="json")
    (directory / "config.yaml").write_text(yaml.safe_dump(config | {"name": "report-test"}, sort_keys=False))
    return directory


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_report(_with_seeds(report_folder(tmp_path_factory.mktemp("run"))))


def test_every_section_appears_when_its_file_exists(report: Path) -> None:
    page = report.read_text()
    assert report.name == "report.html"
    assert "<title>report-test — multitask report</title>" in page  # the config's name
    for heading in (
        "Configuration",
        "Results: methods compared",
        "Negative transfer",
        "Task affinity and grouping",
        "Gradient conflict on the shared parameters",
        "Trade-off between tasks",
        "Training runs",
    ):
        assert f">{heading}" in page, heading
    assert '<span class="hurts">hurts</span>' in page  # the adversarial task's verdict
    assert "gate usage" in page  # the MMoE run's gates
    assert page.count("<img ") >= 8
    assert "Files that could not be read" not in page


def test_results_come_first_and_the_configuration_last_collapsed(report: Path) -> None:
    page = report.read_text()
    sections = re.findall(r'<section id="([a-z]+)">', page)
    assert sections[:3] == ["results", "transfer", "chart"] and sections[-1] == "config"
    assert sections.index("comparisons") < sections.index("runs")  # the seeds' tables after the verdicts
    config = page[page.index('<section id="config">') :]
    assert re.search(r"<details><summary>config.yaml: the run's full configuration \(\d+ lines", config)
    assert "<details open" not in page
    results = page[page.index('<section id="results">') : page.index('<section id="transfer">')]
    assert "a0 mse ↓" in results and "Δm% vs stl" in results  # the metric's direction, the baseline
    assert '0.9200 <span class="muted">± 0.0283</span>' in results  # mtl a0 mse: mean ± sample std (ddof=1)
    assert "mean ± sample standard deviation (ddof = 1)" in results
    for method, text in DESCRIPTIONS.items():
        assert f"<dt>{method}</dt><dd>{html.escape(text)}</dd>" in results
    chart = page[page.index('<section id="chart">') :]
    assert chart[: chart.index("</section>")].count('alt="comparison of methods (bar chart)"') == 1


def test_the_page_needs_nothing_else(report: Path) -> None:
    page = report.read_text()
    assert "<script" not in page and "@import" not in page and "url(" not in page
    sources = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert sources and all(s.startswith(("data:image/png;base64,", "#")) for s in sources)


def test_an_unreadable_file_is_reported_on_the_page(tmp_path: Path) -> None:
    (tmp_path / "metrics.jsonl").write_text('{"epoch": 0, "train/a/loss": 1.0}\n')
    (tmp_path / "affinity.json").write_text("{broken")
    page = build_report(tmp_path, tmp_path / "out.html").read_text()
    assert "Files that could not be read" in page and "affinity.json" in page
    assert "Training runs" in page


def test_bad_folders_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a folder"):
        build_report(tmp_path / "missing")
    with pytest.raises(ConfigError, match="nothing to report"):
        build_report(tmp_path)


def test_report_of_a_short_census_income_run(tmp_path: Path) -> None:
    from multitask.data import load_census_income

    try:
        data = load_census_income()
    except DataError as error:
        pytest.skip(f"Census-Income data unavailable: {error}")
    generator = torch.Generator().manual_seed(0)
    train = data.train.subset(torch.randperm(len(data.train), generator=generator)[:3000])
    test = data.test.subset(torch.arange(1000))
    tasks = [Task(name, nn.Linear(16, 1), "binary", metrics=["auc"]) for name in ("income", "marital")]
    comparison = compare(
        MLP(data.num_features, [32, 16]),
        tasks,
        train,
        None,
        test,
        run_dir=tmp_path,
        options=TrainerOptions(
            max_epochs=1,
            batch_size=256,
            callbacks=[GradientConflictMonitor(every=2), TaskAffinityMonitor(every=2)],
            progress=False,
        ),
    )
    assert comparison.results["mtl"]["marital"]["auc"] > 0.8  # one epoch on 3000 people already ranks well
    page = build_report(tmp_path).read_text()
    for heading in ("Results: methods compared", "Gradient conflict", "Task affinity", "Training runs"):
        assert heading in page
    assert page.count("<h3><code>stl/") == 2  # both single-task runs have curves
    assert (tmp_path / "mtl" / "conflict.jsonl").is_file()
    assert not (tmp_path / "stl" / "income" / "conflict.jsonl").exists()  # single-task runs have no conflict


# ----- a real headless browser -----
_PROBE = """<script>
window.__problems = [];
window.addEventListener("error", e => {
  window.__problems.push("error: " + (e.message || (e.target && (e.target.alt || e.target.src))));
}, true);
const __log = console.error;
console.error = (...args) => { window.__problems.push("console: " + args.join(" ")); __log(...args); };
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const broken = images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt);
  const bars = images.filter(i => i.alt.startsWith("comparison of methods") && i.naturalWidth > 0).length;
  const first = document.querySelector("section");
  const table = first.querySelector("table").getBoundingClientRect();
  const transfer = document.querySelector("#transfer table").getBoundingClientRect();
  const visible = Array.from(document.querySelectorAll("h1, h2, h3, th, td, p, dt, dd, summary, pre"))
    .filter(e => { const r = e.getBoundingClientRect(); return r.height > 0 && r.top < 900 && r.bottom > 0; })
    .map(e => e.innerText).join(" | ");
  const details = document.querySelector("#config details");
  const out = document.createElement("pre");
  out.id = "__check";
  out.textContent = JSON.stringify({
    images: images.length, broken: broken, problems: window.__problems, bars: bars,
    first: first.id, heading: first.querySelector("h2").innerText, tableTop: table.top, transferTop: transfer.top,
    viewport: [innerWidth, innerHeight], visible: visible,
    configOpen: details ? details.open : null, lastSection: Array.from(document.querySelectorAll("section")).pop().id,
  });
  document.body.appendChild(out);
});
</script>"""


def test_report_renders_in_a_headless_browser(report: Path, tmp_path: Path) -> None:
    binary = chromium()
    probed = tmp_path / "probed.html"
    probed.write_text(report.read_text().replace("<head>", "<head>" + _PROBE, 1))
    done = run_browser(
        binary, tmp_path / "profile", "--window-size=1200,900", "--virtual-time-budget=5000", "--dump-dom",
        probed.as_uri(),
    )  # fmt: skip
    match = re.search(r'<pre id="__check">(.*?)</pre>', done.stdout, re.DOTALL)
    assert match, f"no result from the page; chromium said: {done.stderr[-2000:]}"
    result = json.loads(html.unescape(match.group(1)))
    assert result["problems"] == []
    assert result["broken"] == []
    assert result["images"] >= 8
    # the first screen (the top 1200 x 900 of the page, as the screenshot below): the title, the results table,
    # then the negative transfer verdicts (the old headless mode's innerHeight leaves out its window frame)
    assert result["viewport"][0] == 1200
    assert result["first"] == "results" and result["heading"].startswith("Results: methods compared")
    assert 0 < result["tableTop"] < 450 and result["tableTop"] < result["transferTop"] < 900
    visible = result["visible"]
    assert "report-test" in visible and "Results: methods compared" in visible
    assert all(method in visible for method in DESCRIPTIONS) and "±" in visible
    assert "hard_sharing · weighting ew" in visible  # the methods' descriptions
    assert "Negative transfer" in visible and "hurts" in visible
    assert "num_experts" not in visible  # the config is not on the first screen...
    assert result["configOpen"] is False and result["lastSection"] == "config"  # ...but collapsed at the end
    assert result["bars"] == 3  # the bar charts of the run and of both seeds, loaded

    first_screen = tmp_path / "first_screen.png"
    run_browser(binary, tmp_path / "profile", f"--screenshot={first_screen}", "--window-size=1200,900", report.as_uri())

    shot = tmp_path / "shot.png"
    run_browser(binary, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1200,2000", report.as_uri())
    import matplotlib.image

    for path, height in ((shot, 2000), (first_screen, 900)):
        pixels = matplotlib.image.imread(path)[..., :3]
        assert pixels.shape[:2] == (height, 1200)
        assert pixels.std() > 0.1  # not a blank page: text, tables and plots
        background = pixels.reshape(-1, 3).max(axis=1) > 0.95
        assert 0.05 < 1 - background.mean() < 0.95
