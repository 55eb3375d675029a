"""geo.core.vocabulary: the county's words → titlemap's categories, from one data file."""

from pathlib import Path

import pytest

from geo import TitlemapError
from geo.core.model import Blocker, LedgerStatus, PlannedAreaKind
from geo.core.vocabulary import NONE, load_vocabulary, word_key


@pytest.mark.parametrize(
    ("phrase", "category"),
    [("未竣工验收", "approvals"), ("消防验收未通过", "approvals"), ("规划手续不全", "approvals"),
     ("手续缺失（立项/规划/施工/竣工/消防/人防）", "approvals"), ("欠缴土地出让金", "land_premium"),
     ("土地出让金未缴清 ", "land_premium"), ("开发商跑路", "developer"),
     ("在建工程抵押", "mortgage"),
     ("法院查封", "mortgage"), ("拖欠农民工工资", "construction_debt"), ("契税未缴", "taxes"),
     ("压占规划道路", "planning_conflict"), ("实测面积与登记面积不符", "area_discrepancy"),
     ("尚未研判", NONE), ("ＡＢＣ", None), ("小区门口有棵树", None)],
)  # fmt: skip
def test_blocker_phrases_map_to_categories(phrase, category):
    assert load_vocabulary().blocker(phrase) == category


@pytest.mark.parametrize(
    ("phrase", "status"),
    [("已化解", "closed"), ("已 销 号", "closed"), ("正在办理", "in_progress"), ("搁置", "stalled"),
     ("已办理首次登记", "first_registered"), ("未启动", "not_started"), ("说不清", None)],
)  # fmt: skip
def test_status_words(phrase, status):
    assert load_vocabulary().status(phrase) == status


@pytest.mark.parametrize(
    ("phrase", "kind"),
    [("城市更新", "urban_renewal"), ("规划道路", "planned_road"), ("片区", "district"),
     ("城东片区", "district"), ("高铁新区", "district"), ("棚户区改造", "urban_renewal"),
     ("公园绿地", "green_space"), ("历史文化街区", None)],
)  # fmt: skip
def test_planned_kinds(phrase, kind):
    assert load_vocabulary().planned_kind(phrase) == kind


def test_every_category_of_the_file_is_one_of_titlemaps():
    words = load_vocabulary()
    assert set(words.blockers.exact.values()) <= {b.value for b in Blocker} | {NONE}
    assert set(words.statuses.exact.values()) == {s.value for s in LedgerStatus}
    assert set(words.planned_kinds.exact.values()) <= {k.value for k in PlannedAreaKind}


def test_a_county_adds_its_own_words(tmp_path: Path):
    own = tmp_path / "我县词表.toml"
    own.write_text(
        '[blockers.taxes]\nwords = ["历史欠费"]\n\n[statuses.closed]\nwords = ["结案"]\n',
        encoding="utf-8",
    )
    words = load_vocabulary(own)
    assert words.blocker("历史欠费") == "taxes" and words.status("结案") == "closed"
    assert words.blocker("未竣工验收") == "approvals"  # the shipped words stay
    assert load_vocabulary().blocker("历史欠费") is None


def test_a_wrong_category_in_a_county_file_is_one_clear_line(tmp_path: Path):
    own = tmp_path / "bad.toml"
    own.write_text('[blockers.weather]\nwords = ["下雨"]\n', encoding="utf-8")
    with pytest.raises(TitlemapError, match=r"blockers\.weather"):
        load_vocabulary(own)


def test_word_key_ignores_width_spaces_and_punctuation():
    assert word_key("  已　销号。") == word_key("已销号") == "已销号"
