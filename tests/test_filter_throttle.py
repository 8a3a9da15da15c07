"""throttle: the sliding window of Fluent Bit's filter_throttle, driven with explicit
clock values (no sleeping, no timing)."""
from filter_helpers import plugin, run, section


def throttle(tmp_path, *lines):
    flt = plugin(tmp_path, section("throttle", *lines))
    flt.next_tick += 3600  # no pane turns over unless a test moves the clock
    return flt


def test_window_allows_rate_times_window_then_drops(tmp_path):
    flt = throttle(tmp_path, "Rate 2", "Window 3", "Interval 1s")
    assert len(run(flt, [{"n": i} for i in range(10)])) == 6
    assert flt.dropped == 4
    assert run(flt, [{"n": 99}]) == []


def test_panes_turn_over_and_free_room(tmp_path):
    flt = throttle(tmp_path, "Rate 2", "Window 3", "Interval 1s")
    run(flt, [{}] * 6)
    flt._advance(flt.next_tick)          # one interval: the oldest (empty) pane goes
    assert run(flt, [{}]) == []
    flt._advance(flt.next_tick + 1)      # two more: the full pane leaves the window
    assert len(run(flt, [{}] * 10)) == 6


def test_long_pause_empties_the_window(tmp_path):
    flt = throttle(tmp_path, "Rate 5", "Window 2")
    run(flt, [{}] * 10)
    flt._advance(flt.next_tick + 100)
    assert flt.total == 0 and len(run(flt, [{}] * 20)) == 10


def test_rate_and_window_floors_as_fluent_bit(tmp_path):
    # a Rate not above 1 is 1 and a Window not above 1 is 5
    flt = throttle(tmp_path, "Rate 0.5", "Window 1")
    assert (flt.rate, flt.size) == (1.0, 5)
    assert len(run(flt, [{}] * 9)) == 5


def test_fractional_interval(tmp_path):
    flt = throttle(tmp_path, "Interval 0.5s", "Print_Status on")
    assert flt.interval == 0.5
