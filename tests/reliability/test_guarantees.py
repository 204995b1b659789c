"""What the library guarantees against bad input, diverging runs, full disks and concurrent writers (one test each)."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from test_fuzz_configs import csv_base, text_base
from torch import nn

from multitask import Task, Trainer
from multitask.cli import main
from multitask.data import ArrayDataset
from multitask.errors import DataError, ShapeError
from multitask.models import MLP, HardSharing
from multitask.training.checkpoint import list_checkpoints, load_checkpoint, save_checkpoint, sweep_temporaries
from multitask.training.lock import RunFolderLock


def run(argv: list[str]) -> tuple[int, str]:
    if argv[0] == "train" and "--output" not in argv:  # never the working directory's runs/
        argv = [*argv, "--output", str(Path(argv[1]).parent / "run")]
    stderr = io.StringIO()
    with redirect_stderr(stderr), redirect_stdout(io.StringIO()):
        status = main(argv)
    return status, stderr.getvalue()


def one_line(status: int, stderr: str, expected: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert status == 2, stderr
    assert len(lines) == 1 and lines[0].startswith("multitask: error: "), stderr
    assert len(lines[0]) < 300, lines[0]
    assert expected in lines[0], lines[0]


def config_file(folder: Path, changes: dict[str, Any] | None = None, base: Any = csv_base) -> Path:
    raw = base(folder)
    for dotted, value in (changes or {}).items():
        node = raw
        *parents, last = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True))
    return path


# ----- 1. one clear line instead of a traceback -----
@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("/dev/null", "is not a folder"),
        ("FILE", "is not a folder"),
        ("/proc/self/x", "cannot be created"),
    ],
)
def test_an_output_folder_that_cannot_be_one(tmp_path: Path, output: str, expected: str) -> None:
    path = config_file(tmp_path)
    if output == "FILE":
        output = str(tmp_path / "a-file")
        Path(output).write_text("x")
    one_line(*run(["train", str(path), "--output", output]), expected)


def test_a_nul_byte_in_the_configs_output(tmp_path: Path) -> None:
    path = config_file(tmp_path, {"output": str(tmp_path / "a\x00b")})
    stderr = io.StringIO()
    with redirect_stderr(stderr), redirect_stdout(io.StringIO()):
        status = main(["train", str(path)])  # the config's own output
    one_line(status, stderr.getvalue(), "embedded null byte")


@pytest.mark.parametrize(
    ("device", "expected"),
    [
        ("cuda", "no CUDA device"),
        ("cuda:99", "no CUDA device" if not torch.cuda.is_available() else "CUDA device(s)"),
        ("tpu", "is not a device name"),
        ("meta", "cannot train a model here"),
    ],
)
def test_devices_this_machine_lacks(tmp_path: Path, device: str, expected: str) -> None:
    if device.startswith("cuda") and torch.cuda.is_available() and device == "cuda":
        pytest.skip("this machine has CUDA")
    one_line(*run(["train", str(config_file(tmp_path, {"training.device": device}))]), expected)


@pytest.mark.parametrize("seed", [-1, 2**64])
def test_seeds_out_of_range(tmp_path: Path, seed: int) -> None:
    one_line(*run(["train", str(config_file(tmp_path, {"seed": seed}))]), "seed: Input should be")


def test_the_newsgroup_data_refuses_a_negative_seed_like_the_others(tmp_path: Path) -> None:
    path = config_file(tmp_path, {"data.seed": -1}, base=text_base)
    one_line(*run(["train", str(path)]), "data.seed: Input should be greater than or equal to 0")


@pytest.mark.parametrize(
    "encoding", [lambda t: t.encode("latin-1"), lambda t: t.encode("utf-16"), lambda t: os.urandom(300)]
)
def test_config_files_that_are_not_utf8(tmp_path: Path, encoding: Any) -> None:
    text = config_file(tmp_path).read_text().replace("fuzz-csv", "données")
    path = tmp_path / "config.yaml"
    path.write_bytes(encoding(text))
    status, stderr = run(["train", str(path)])
    assert status == 2 and len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr, stderr


@pytest.mark.parametrize(
    ("train", "expected"),
    [("x" * 5000 + ".csv", "unusable path"), ("a\x00b.csv", "unusable path"), ("/proc/self/mem", "cannot read")],
)
def test_data_paths_that_cannot_be_read(tmp_path: Path, train: str, expected: str) -> None:
    one_line(*run(["train", str(config_file(tmp_path, {"data.train": train}))]), expected)


def test_a_latin1_csv_is_refused_and_a_csv_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    path = config_file(tmp_path)
    text = (tmp_path / "train.csv").read_text().replace(",u,", ",é,")
    (tmp_path / "train.csv").write_bytes(text.encode("latin-1"))
    one_line(*run(["train", str(path)]), "is not UTF-8 text")
    (tmp_path / "train.csv").write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    status, stderr = run(["train", str(path), "--output", str(tmp_path / "run")])
    assert status == 0, stderr


def test_a_task_name_with_a_dot_is_refused_before_any_work(tmp_path: Path) -> None:
    raw = csv_base(tmp_path)
    raw["tasks"][0]["name"] = "y.1"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw))
    one_line(*run(["train", str(tmp_path / "config.yaml")]), "tasks[0].name: String should match pattern")
    with pytest.raises(Exception, match=r"without '/' or '\.'"):
        Task("y.1", nn.Linear(2, 1), "binary")


def test_a_layer_too_large_to_allocate_is_refused_with_its_size(tmp_path: Path) -> None:
    path = config_file(tmp_path, {"model.encoder.hidden": [200_000, 200_000]})
    one_line(*run(["train", str(path)]), "model: a layer asks for 160,000,000,000 bytes")


def test_evaluate_on_a_model_file_with_the_wrong_contents(tmp_path: Path) -> None:
    path = config_file(tmp_path)
    output = tmp_path / "run"
    assert run(["train", str(path), "--output", str(output)])[0] == 0
    model = output / "mtl" / "model.pt"
    save_checkpoint(model, {"model": "x"})  # a valid checksum, the wrong contents
    one_line(*run(["evaluate", str(output), "--split", "val"]), f"{model} holds no model weights")
    save_checkpoint(model, {"model": {"encoder.0.weight": torch.zeros(3, 3)}})  # another architecture's weights
    one_line(*run(["evaluate", str(output), "--split", "val"]), f"{model} does not hold this config's HardSharing")


def test_resume_errors_name_the_checkpoint(tmp_path: Path) -> None:
    path = config_file(tmp_path)
    output = tmp_path / "run"
    assert run(["train", str(path), "--output", str(output)])[0] == 0
    newest = list_checkpoints(output / "mtl" / "checkpoints")[-1]
    state = load_checkpoint(newest)
    save_checkpoint(newest, {**state, "optimizer": {"state": {}, "param_groups": []}})
    one_line(*run(["train", str(path), "--output", str(output), "--resume"]), f"{newest}: checkpoint does not fit")
    del state["progress"]
    save_checkpoint(newest, state)
    one_line(*run(["train", str(path), "--output", str(output), "--resume"]), f"{newest} is not a checkpoint")


# ----- 2. wrong types are refused; long values are cut -----
@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"training.optimizer.lr": True}, "training.optimizer.lr: expected a number, got true"),
        ({"seed": True}, "seed: expected a number, got true"),
        ({"analysis.report": 0}, "analysis.report: expected true or false, got 0"),
        ({"training.epochs": False}, "training.epochs: expected a number, got false"),
    ],
)
def test_a_bool_is_not_a_number_and_a_number_is_not_a_bool(
    tmp_path: Path, change: dict[str, Any], expected: str
) -> None:
    one_line(*run(["train", str(config_file(tmp_path, change))]), expected)


def test_max_train_samples_true_is_refused(tmp_path: Path) -> None:
    raw = yaml.safe_load((Path(__file__).parents[2] / "src/multitask/configs/census_demo.yaml").read_text())
    raw["data"]["max_train_samples"] = True
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(raw))
    one_line(*run(["train", str(tmp_path / "c.yaml")]), "data.max_train_samples: expected a number, got true")


def test_an_error_line_never_echoes_a_megabyte(tmp_path: Path) -> None:
    status, stderr = run(["train", str(config_file(tmp_path, {"training.optimizer.name": "a" * 1_000_000}))])
    one_line(status, stderr, "(1000002 chars)")


# ----- 3. nothing non-finite is saved -----
def test_a_diverging_run_with_skipped_steps_ends_in_an_error_and_saves_no_infinite_weight(tmp_path: Path) -> None:
    changes = {"training.optimizer": {"name": "sgd", "lr": 1000.0}, "training.on_nonfinite": "skip"}
    changes["training.epochs"] = 3
    changes["compare"] = {"methods": ["mtl"]}
    output = tmp_path / "run"
    status, stderr = run(["train", str(config_file(tmp_path, changes)), "--output", str(output)])
    assert status == 2, stderr
    assert "NaN or infinite" in stderr and "lower the learning rate" in stderr
    for saved in [*output.rglob("model.pt"), *output.rglob("checkpoint-*.pt")]:
        state = load_checkpoint(saved)
        assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point()), saved


def test_skipped_steps_are_in_the_history_and_logged(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    torch.manual_seed(0)
    x = torch.randn(64, 3)
    b = x[:, 0].clone()
    b[:16] = float("inf")  # the first of 4 batches: one step skipped
    tasks = [Task("b", nn.Linear(4, 1), "regression")]
    trainer = Trainer(
        HardSharing(MLP(3, [4]), tasks), tasks, max_epochs=1, batch_size=16, shuffle=False, on_nonfinite="skip",
        progress=False, run_dir=tmp_path,
    )  # fmt: skip
    with caplog.at_level("WARNING", logger="multitask"):
        history = trainer.fit(ArrayDataset(x=x, b=b))
    assert history[0]["train/skipped_steps"] == 1.0
    assert "epoch 1: 1 of 4 steps skipped" in caplog.text
    assert "train/skipped_steps" in (tmp_path / "metrics.csv").read_text().splitlines()[0]


def test_an_infinite_feature_is_named_at_load_time(tmp_path: Path) -> None:
    path = config_file(tmp_path)
    lines = (tmp_path / "train.csv").read_text().splitlines()
    lines[5] = "inf," + lines[5].split(",", 1)[1]
    (tmp_path / "train.csv").write_text("\n".join(lines) + "\n")
    one_line(*run(["train", str(path)]), "train.csv: numeric column 'a' holds inf in data row 5")


# ----- 4. full disks and writers killed mid-write -----
def test_a_full_disk_gives_one_error_removes_the_partial_file_and_keeps_the_last_checkpoint(tmp_path: Path) -> None:
    script = f"""
import resource, signal
from pathlib import Path
import torch
from multitask.training.checkpoint import save_checkpoint
from multitask.errors import CheckpointError
path = Path({str(tmp_path)!r}) / "checkpoint-000000001.pt"
save_checkpoint(path, {{"w": torch.zeros(10)}})
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))  # files may not grow past 200 kB: a full disk
try:
    save_checkpoint(path, {{"w": torch.zeros(1_000_000)}})
except CheckpointError as error:
    print(error)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert f"cannot write {tmp_path / 'checkpoint-000000001.pt'}" in result.stdout
    assert "it needs 4,00" in result.stdout and "the previous checkpoint is kept" in result.stdout
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint-000000001.pt"]  # no partial file
    assert load_checkpoint(tmp_path / "checkpoint-000000001.pt")["w"].shape == (10,)


def test_stale_temporary_files_of_dead_writers_are_swept(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".checkpoint-000000003.pt.{dead.stdout.strip()}.tmp"
    live = tmp_path / f".checkpoint-000000004.pt.{os.getpid()}.tmp"
    stale.write_bytes(b"partial")
    live.write_bytes(b"being written")
    assert sweep_temporaries(tmp_path) == [stale]
    assert not stale.exists() and live.exists()


KILL_SCRIPT = Path(__file__).with_name("_big_checkpoints.py")


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")
def test_sigkill_during_a_checkpoint_write_then_resume(tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    done = subprocess.run([sys.executable, str(KILL_SCRIPT), str(reference)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for attempt in range(5):  # the kill must land between a write's start and its rename: try until it does
        killed = tmp_path / f"killed-{attempt}"
        process = subprocess.Popen([sys.executable, str(KILL_SCRIPT), str(killed)], stderr=subprocess.DEVNULL)
        folder, deadline = killed / "checkpoints", time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            if folder.is_dir() and list_checkpoints(folder) and any(p.suffix == ".tmp" for p in folder.iterdir()):
                os.kill(process.pid, signal.SIGKILL)
                break
        process.wait(timeout=30)
        if folder.is_dir() and any(p.suffix == ".tmp" for p in folder.iterdir()):
            break  # the killed write left its partial file
    else:
        pytest.fail("no kill landed inside a checkpoint write in 5 attempts")
    resumed = subprocess.run([sys.executable, str(KILL_SCRIPT), str(killed), "--resume"], capture_output=True)
    assert resumed.returncode == 0, resumed.stderr
    assert not [p for p in killed.rglob("*.tmp")]  # swept at the resume
    expected = torch.load(reference / "final.pt", weights_only=True)
    actual = torch.load(killed / "final.pt", weights_only=True)
    assert all(torch.equal(expected[name], actual[name]) for name in expected)


# ----- 5. one writer per run folder -----
def test_a_second_writer_is_refused_while_the_first_runs_and_a_killed_holder_leaves_no_lock(tmp_path: Path) -> None:
    path = config_file(tmp_path, {"training.epochs": 200, "compare": {"methods": ["mtl"]}})
    output = tmp_path / "run"
    first = subprocess.Popen(
        [str(Path(sys.executable).with_name("multitask")), "train", str(path), "--output", str(output)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (output / "mtl" / "checkpoints").is_dir() and time.monotonic() < deadline:
            time.sleep(0.05)
        config_before = (output / "config.yaml").read_text()
        one_line(*run(["train", str(path), "--output", str(output), "--resume"]), f"is in use by process {first.pid}")
        one_line(*run(["train", str(path), "--output", str(output), "--overwrite"]), "is in use by process")
        assert (output / "config.yaml").read_text() == config_before and (output / "mtl").is_dir()
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    with RunFolderLock(output):  # the killed holder's lock went with it
        pass
    with RunFolderLock(output), pytest.raises(Exception, match="in use by process"):  # and one process is one writer
        RunFolderLock(output).acquire()


# ----- 6. the Python API checks like the CLI -----
@pytest.mark.parametrize("bad", [2.0, -1.0, 0.5])
def test_binary_labels_other_than_0_and_1_are_refused(bad: float) -> None:
    x = torch.randn(32, 3)
    y = (x[:, 0] > 0).float()
    y[7] = bad
    tasks = [Task("y", nn.Linear(4, 1), "binary")]
    with pytest.raises(DataError, match=rf"task 'y': the training data's column 'y' holds {bad:g}"):
        Trainer(HardSharing(MLP(3, [4]), tasks), tasks, progress=False).fit(ArrayDataset(x=x, y=y))


def test_class_indices_beyond_the_head_and_wrong_input_shapes_get_the_librarys_errors() -> None:
    x = torch.randn(32, 3)
    c = torch.randint(0, 3, (32,))
    c[5] = 7
    tasks = [Task("c", nn.Linear(4, 3), "multiclass")]
    with pytest.raises(DataError, match=r"task 'c': training data, epoch 1, step 1: .* class index 7 .* 3 classes"):
        Trainer(HardSharing(MLP(3, [4]), tasks), tasks, progress=False).fit(ArrayDataset(x=x, c=c))
    tasks = [Task("c", nn.Linear(4, 3), "multiclass")]
    with pytest.raises(ShapeError, match=r"cannot take a batch .*columns: x \[32, 5\].* input size"):
        c[5] = 1
        Trainer(HardSharing(MLP(3, [4]), tasks), tasks, progress=False).fit(ArrayDataset(x=torch.randn(32, 5), c=c))
