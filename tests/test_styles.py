"""The one status palette: every status has a distinct colour and a Chinese label."""

from geo.compounds import STATUS_FILTER_VALUES
from maps.styles import STATUS_COLOURS, legend


def test_every_status_has_its_own_colour_and_label():
    assert set(STATUS_COLOURS) == set(STATUS_FILTER_VALUES)
    assert len(set(STATUS_COLOURS.values())) == len(STATUS_COLOURS)
    rows = legend()
    assert [status for status, _, _ in rows] == list(STATUS_COLOURS)
    assert all(label and not label.isascii() for _, label, _ in rows)
