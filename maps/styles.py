"""The one status palette for web and print (Okabe-Ito: safe for colour-blind readers)."""

from geo.compounds import NOT_ON_LEDGER
from geo.model import STATUS_LABELS, LedgerStatus

STATUS_COLOURS = {
    LedgerStatus.NOT_STARTED.value: "#D55E00",  # vermillion
    LedgerStatus.STALLED.value: "#CC79A7",  # reddish purple
    LedgerStatus.IN_PROGRESS.value: "#E69F00",  # orange
    LedgerStatus.FIRST_REGISTERED.value: "#56B4E9",  # sky blue
    LedgerStatus.CLOSED.value: "#009E73",  # bluish green
    NOT_ON_LEDGER: "#999999",
}


def legend() -> list[tuple[str, str, str]]:
    """(status, Chinese label, colour) in the order a legend lists them."""
    labels = {s.value: label for s, label in STATUS_LABELS.items()} | {NOT_ON_LEDGER: "不在台账"}
    return [(status, labels[status], colour) for status, colour in STATUS_COLOURS.items()]
