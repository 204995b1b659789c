"""The docstring examples of the adversarial package, the shared-private model and the text loader run as written."""

from __future__ import annotations

import doctest
from types import ModuleType

import pytest

from multitask.adversarial import _reversal
from multitask.data import _text
from multitask.models import _shared_private


@pytest.mark.parametrize("module", [_reversal, _shared_private, _text], ids=lambda m: m.__name__)
def test_doctests(module: ModuleType) -> None:
    result = doctest.testmod(module, raise_on_error=True)
    assert result.attempted > 0 and result.failed == 0
