"""Registries of the maths: built-ins found by field, one function per name."""

import pytest

from r1kit.registry import REGISTRIES, registered


def test_a_field_s_built_ins_are_registered_on_first_ask():
    assert {"cispo", "clip", "sapo"} <= set(registered("learner.policy_loss"))


def test_a_second_function_under_one_name_is_refused():
    registered("learner.kl_estimator")
    with pytest.raises(ValueError, match="learner.kl_estimator: 'k3' is already registered"):
        REGISTRIES["learner.kl_estimator"].register("k3")(lambda logp, ref: logp - ref)
