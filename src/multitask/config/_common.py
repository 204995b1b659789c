"""The config schema's common ground: the strict base model, seeds, layer sizes, parameter values."""

from __future__ import annotations

from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    model_validator,
)


class StrictModel(BaseModel):
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
                raise ValueError(f"{FIELD}{name}: expected a number, got {str(value).lower()}")
            if bool in kinds and kinds <= {bool, type(None)} and not isinstance(value, bool) and value is not None:
                raise ValueError(f"{FIELD}{name}: expected true or false, got {short(value)}")
        return data


#: Marks a model-level error that belongs to one field (`describe_error` moves the name into the location).
FIELD = "field "


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


def short(value: Any, limit: int = 40) -> str:
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


ParamValue = StrictBool | StrictInt | StrictFloat | StrictStr | list[StrictInt | StrictFloat] | list[StrictStr]
