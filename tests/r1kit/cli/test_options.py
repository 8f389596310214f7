import pytest
from pydantic import BaseModel, Field

from r1kit.cli.options import schema_range


class Bounded(BaseModel):
    count: int = Field(1, gt=0)
    share: float = Field(0.5, ge=0.0, le=1.0)
    scale: float = Field(1.0, gt=0.0)


def test_an_integer_above_a_bound_starts_one_past_it():
    assert schema_range(Bounded, "count") == {"min": 1}


def test_closed_bounds_are_the_schemas_own():
    assert schema_range(Bounded, "share") == {"min": 0.0, "max": 1.0}


def test_an_open_float_bound_is_refused_rather_than_widened():
    with pytest.raises(TypeError, match="Bounded.scale: no typer range"):
        schema_range(Bounded, "scale")
