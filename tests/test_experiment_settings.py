"""xpscratch.experiments._settings: one frozen, checked settings dataclass per experiment."""

from __future__ import annotations

import dataclasses

import pytest

from xpscratch.experiments import (
    EXPERIMENTS,
    optimizer_zoo,
    overfit_weight_decay,
    regularization_compare,
)


def test_every_experiment_has_a_frozen_settings_class_and_a_quick_variant():
    for name, exp in EXPERIMENTS.items():
        assert dataclasses.is_dataclass(exp.full) and exp.full.experiment == name
        with pytest.raises(dataclasses.FrozenInstanceError):
            exp.full.__setattr__(next(iter(exp.full)), 1)
        # the mapping view, for old callers: every field, by name
        assert list(exp.full) == [f.name for f in dataclasses.fields(exp.full)]
        assert all(exp.full[k] == getattr(exp.full, k) for k in exp.full)


def test_scalars_are_checked_once_and_ints_widen_to_floats():
    s = overfit_weight_decay.FULL.replace(lr=1, epochs=5.0, test_size=None)
    assert (s.lr, type(s.lr), s.epochs, type(s.epochs)) == (1.0, float, 5, int)
    assert s.replace(weight_decay_lambdas=[0, 1]).weight_decay_lambdas == (0.0, 1.0)
    for change, message in (
        ({"epochs": 2.5}, "'epochs' must be int"),
        ({"epochs": True}, "'epochs' must be int"),
        ({"lr": "0.01"}, "'lr' must be float"),
        ({"test_size": 1.5}, "'test_size' must be int or None"),
        ({"hidden_size_list": 100}, "'hidden_size_list' must be a sequence"),
    ):
        with pytest.raises(TypeError, match=f"overfit_weight_decay: setting {message}"):
            overfit_weight_decay.FULL.replace(**change)


def test_unknown_names_and_experiment_rules_are_refused_before_any_work():
    with pytest.raises(TypeError, match=r"unknown setting\(s\) \['epoch'\]; the settings are"):
        overfit_weight_decay.FULL.replace(epoch=3)
    with pytest.raises(ValueError, match="unknown surface"):
        optimizer_zoo.FULL.replace(surfaces=["moon"])
    with pytest.raises(ValueError, match="validation_size >= 1"):
        regularization_compare.FULL.replace(validation_size=0)


def test_replace_copies_so_a_result_cannot_change_the_book_settings():
    s = optimizer_zoo.FULL.replace()
    s.steps["bowl"] = 1
    assert optimizer_zoo.FULL.steps["bowl"] == 30
    assert (
        s != optimizer_zoo.FULL and s.replace(steps=optimizer_zoo.FULL.steps) == optimizer_zoo.FULL
    )
