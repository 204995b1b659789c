"""Architectures by name: every model class is registered, declares what it needs, and builds from parts."""

from __future__ import annotations

import pytest
from _models import create, input_for, make_tasks, parts_for

from multitask import models
from multitask.config import ARCHITECTURE_PARAMS, ARCHITECTURES, SHARED_FEATURES, readers_of
from multitask.errors import ConfigError, UnknownNameError


def test_every_exported_model_class_is_registered() -> None:
    classes = {
        value
        for name in models.__all__
        if isinstance(value := getattr(models, name), type) and issubclass(value, models.MultiTaskModel)
    } - {models.MultiTaskModel}
    registered = {models.info(name).cls for name in models.names()}
    # CGC is PLE with one level: the name "cgc" builds it so (PLE(..., num_levels=1)); SharedTrunk wraps a
    # registered model (a trunk under it), it is not an architecture of its own
    assert classes - registered == {models.CGC, models.SharedTrunk}, "a model class that models.create cannot build"


def test_the_config_reads_the_registry() -> None:
    assert set(ARCHITECTURES) == set(models.names()) and ARCHITECTURES[0] == "hard_sharing"
    assert ARCHITECTURE_PARAMS["ple"] == ("expert", "num_task_experts", "num_shared_experts", "num_levels")
    assert ARCHITECTURE_PARAMS["cgc"] == ("expert", "num_task_experts", "num_shared_experts")  # PLE, one level
    assert ARCHITECTURE_PARAMS["shared_private"] == ("private", "orthogonality")
    assert set(SHARED_FEATURES) == {"hard_sharing", "shared_private"}
    assert readers_of("images") == ["hard_sharing", "coupled", "mtan", "shared_private", "soft_sharing"]
    assert "mtan" not in readers_of("features") and "mmoe" not in readers_of("tokens")


def test_variants_are_their_class_with_fixed_arguments() -> None:
    omoe, cgc = create("omoe"), create("cgc")
    assert isinstance(omoe, models.MMoE) and omoe.shared_gate
    assert isinstance(cgc, models.PLE) and len(cgc.levels) == 1
    assert "num_levels" not in models.info("cgc").hyperparameters


@pytest.mark.parametrize("name", models.names())
def test_created_models_run_on_their_input(name: str) -> None:
    outputs = create(name)(input_for(name))
    assert sorted(outputs) == ["a", "b", "c"]


def test_bad_requests_name_what_is_wrong() -> None:
    with pytest.raises(UnknownNameError, match="unknown architecture 'moe'; allowed: cgc, coupled"):
        models.info("moe")
    with pytest.raises(ConfigError, match=r"architecture 'mmoe' takes no lam \(its hyper-parameters: num_experts\)"):
        models.create("mmoe", make_tasks(), parts_for("mmoe"), lam=0.1)
    no_expert = models.ModelParts(encoder=parts_for("mmoe").encoder, in_features=5)
    with pytest.raises(ConfigError, match=r"MMoE needs ModelParts\.expert"):
        models.create("mmoe", make_tasks(), no_expert)
    with pytest.raises(ConfigError, match="mtan attends over a convolutional encoder's stages; the encoder is MLP"):
        models.create("mtan", make_tasks(), parts_for("mmoe"))


def test_the_docstring_examples_run() -> None:
    import doctest

    from multitask.models import _registry

    assert doctest.testmod(_registry, raise_on_error=True).attempted > 0
