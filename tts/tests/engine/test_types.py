"""The torch-free engine types the Django side uses."""

from dataclasses import fields

import pytest

from tts.engine.types import LIMITS, ControlError, Controls


def test_controls_as_dict_names_every_control_in_the_cache_keys_order():
    controls = Controls(speed=1.23456, pitch=-2, energy=0.8, pause=1.5)

    assert list(controls.as_dict()) == [f.name for f in fields(Controls)] == list(LIMITS)
    assert controls.as_dict() == {"speed": 1.2346, "pitch": -2.0, "energy": 0.8, "pause": 1.5}


@pytest.mark.parametrize("name", list(LIMITS))
def test_every_control_is_range_checked(name):
    low, high = LIMITS[name]
    with pytest.raises(ControlError):
        Controls(**{name: high + 1})
    with pytest.raises(ControlError):
        Controls(**{name: float("nan")})
    assert getattr(Controls(**{name: low}), name) == low
