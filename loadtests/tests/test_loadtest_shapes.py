"""Load shapes: users over time, and that every shape ends by itself."""

from __future__ import annotations

import pytest

from loadtests import shapes


def test_smoke_ramps_to_the_peak_within_five_seconds_and_ends() -> None:
    shape = shapes.build("smoke", 20, 10)
    assert shape.tick(0) == (10, 2.0)
    assert shape.tick(19.9) == (10, 2.0)
    assert shape.tick(20) is None
    assert shape.duration_s == 20 and shape.peak_users == 10


def test_step_climbs_in_equal_steps_long_enough_for_autoscaling() -> None:
    shape = shapes.build("step")
    assert shape.duration_s == 30 * 60
    assert [(shape.tick(t) or (-1, 0))[0] for t in (0, 359, 360, 719, 720, 1080, 1440, 1799)] == [
        40,
        40,
        80,
        80,
        120,
        160,
        200,
        200,
    ]
    assert shape.tick(1800) is None
    # Each step of the default is 6 minutes: target tracking needs 3 one-minute datapoints, then task start.
    assert shape.stages[1].until_s - shape.stages[0].until_s == 360


def test_step_never_has_more_steps_than_users() -> None:
    shape = shapes.build("step", 100, 3)
    assert [stage.users for stage in shape.stages] == [1, 2, 3]


def test_soak_ramps_over_a_minute_then_holds_for_an_hour() -> None:
    shape = shapes.build("soak")
    assert shape.tick(0) == (50, 1.0)
    assert shape.tick(3599) == (50, 1.0)
    assert shape.tick(3600) is None


@pytest.mark.parametrize("name", sorted(shapes.BUILDERS))
def test_every_shape_ends(name: str) -> None:
    shape = shapes.build(name, 30, 4)
    assert shape.tick(shape.duration_s) is None
    assert all(shape.tick(t) is not None for t in range(0, 30))


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("5m", 300), ("1h30m", 5400), ("1h2m3s", 3723)]
)
def test_durations_parse_like_locust_run_time(text: str, seconds: float) -> None:
    assert shapes.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "fast", "5 minutes", "-3"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        shapes.parse_duration(text)


def test_unknown_shapes_and_empty_runs_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown shape"):
        shapes.build("spike")
    with pytest.raises(ValueError):
        shapes.build("smoke", 0, 1)
