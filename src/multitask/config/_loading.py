"""Reading a config: YAML to a validated `ExperimentConfig`, data paths resolved and checked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    ValidationError,
)

from multitask.config._common import short
from multitask.config._encoders import TransformerEncoderConfig
from multitask.config._errors import describe_error
from multitask.config._experiment import ExperimentConfig
from multitask.errors import ConfigError, os_reason


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
        raise ConfigError(f"cannot read config {short(str(path), 120)}: {os_reason(error)}") from None
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
    return _resolve_encoder_path(_resolve_paths(config, base_dir, source), base_dir, source)


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
                f"{source}: data.{field}: unusable path {short(str(value), 80)}: {os_reason(error)}"
            ) from None
        if not found:
            what = "folder" if is_folder else "file"
            raise ConfigError(f"{source}: data.{field}: {what} not found: {short(str(resolved), 120)}")
        updates[field] = resolved
    if not updates:
        return config
    return config.model_copy(update={"data": config.data.model_copy(update=updates)})


def _resolve_encoder_path(config: ExperimentConfig, base_dir: Path, source: str) -> ExperimentConfig:
    """A ``transformer`` encoder's folder made absolute (relative to ``base_dir``); it must hold ``config.json``."""
    encoder = config.model.encoder
    if not isinstance(encoder, TransformerEncoderConfig) or encoder.path is None:
        return config
    try:
        folder = (encoder.path if encoder.path.is_absolute() else base_dir / encoder.path).resolve()
        found = (folder / "config.json").is_file()
    except (OSError, ValueError) as error:
        raise ConfigError(
            f"{source}: model.encoder.path: unusable path {short(str(encoder.path), 80)}: {os_reason(error)}"
        ) from None
    if not found:
        raise ConfigError(
            f"{source}: model.encoder.path: no Hugging Face checkpoint (config.json) in {short(str(folder), 120)}"
        )
    model = config.model.model_copy(update={"encoder": encoder.model_copy(update={"path": folder})})
    return config.model_copy(update={"model": model})
