"""A validation error as one line naming the field path and what is allowed."""

from __future__ import annotations

import difflib
import re
from typing import Any, get_args

from pydantic import (
    BaseModel,
    ValidationError,
)

from multitask.config._common import FIELD, short
from multitask.config._data import DataConfig
from multitask.config._encoders import (
    BagOfEmbeddingsConfig,
    CNNConfig,
    MLPConfig,
    TransformerEncoderConfig,
)


def _tags(classes: tuple[type[BaseModel], ...]) -> dict[str, type[BaseModel]]:
    """Each section class by the value of its ``type`` literal (its tag in the union)."""
    return {get_args(cls.model_fields["type"].annotation)[0]: cls for cls in classes}


#: The union tags of the data and encoder sections, and their classes (error locations leave the tags out).
TAGGED: dict[str, type[BaseModel]] = _tags(
    (*get_args(DataConfig), MLPConfig, BagOfEmbeddingsConfig, CNNConfig, TransformerEncoderConfig)
)


def describe_error(error: ValidationError, model: type[BaseModel]) -> str:
    """The first validation error as one line: ``field.path: what is wrong (allowed: ...)``."""
    first = error.errors()[0]
    parts = [part for part in first["loc"] if part not in TAGGED]  # drop the unions' tags
    location = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in parts).lstrip(".")
    message = first["msg"].removeprefix("Value error, ")
    value = first.get("input")
    if message.startswith(FIELD):  # a model-level check of one field: the field joins the location
        name, message = message.removeprefix(FIELD).split(": ", 1)
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
        message = f"unknown value {short(value)}; {_choices(str(value), expected, 'allowed')}"
    elif isinstance(value, str | int | float | bool) and first["type"] not in ("value_error", "assertion_error"):
        message += f" (got {short(value)})"
    if len(message) > 280:  # a safety net: messages are written short, echoes of values are cut by short
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
        if part in TAGGED:
            current = TAGGED[part]
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
