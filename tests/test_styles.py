"""The one status palette: every status has a distinct colour and a Chinese label."""

from geo.query.compounds import STATUS_FILTER_VALUES
from maps.styles import STATUS_COLOURS, legend


def test_every_status_has_its_own_colour_and_label():
    assert set(STATUS_COLOURS) == set(STATUS_FILTER_VALUES)
    assert len(set(STATUS_COLOURS.values())) == len(STATUS_COLOURS)
    rows = legend()
    assert [status for status, _, _ in rows] == list(STATUS_COLOURS)
    assert all(label and not label.isascii() for _, label, _ in rows)


def test_problem_pieces_have_their_own_colour_hatch_and_label():
    from geo.checks.report import CHECKS
    from maps.styles import (
        PIECE_COLOURS,
        PIECE_STYLES,
        PLANNED_AREA_STYLES,
        hatch_marks,
        piece_legend,
        piece_pattern_svg,
        web_styles,
    )

    # every kind of piece geo.checks draws (overlaps, gaps, land beyond parcels, planned)
    assert set(PIECE_STYLES) == {"overlap", "gap", "beyond", "planned"} <= set(CHECKS)
    colours = [style["colour"] for style in PIECE_STYLES.values()]
    assert len(set(colours)) == len(colours) and PIECE_COLOURS == dict(
        zip(PIECE_STYLES, colours, strict=True)
    )
    # never a status colour (they lie on the compounds) nor a planned area's outline colour
    taken = {c.upper() for c in STATUS_COLOURS.values()}
    taken |= {s["colour"].upper() for s in PLANNED_AREA_STYLES.values()}
    assert not taken & {c.upper() for c in colours}
    # told apart without colour too: each kind its own hatch
    hatches = [hatch_marks(style["hatch"]) for style in PIECE_STYLES.values()]
    assert all(hatches) and len({repr(h) for h in hatches}) == len(hatches)
    for kind, label, style in piece_legend():
        assert label == CHECKS[kind][0] == style["label"] and style["label_en"] == CHECKS[kind][1]
        pattern = piece_pattern_svg(f"p-{kind}", kind)
        assert pattern.startswith(f'<pattern id="p-{kind}"') and style["colour"] in pattern
    web = web_styles()
    assert web["pieces"] == PIECE_STYLES and set(web["piece_marks"]) == set(PIECE_STYLES)
