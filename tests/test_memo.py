"""geo.db.memo: one memo per engine, bounded, computed once under concurrency."""

import threading
import time

from sqlalchemy import create_engine

from geo.db.memo import RevisionMemo, memo_of


def test_computes_once_and_keeps():
    memo = RevisionMemo()
    calls = []
    assert memo(("extent", "629901", 1), lambda: calls.append(1) or 42) == 42
    assert memo(("extent", "629901", 1), lambda: calls.append(1) or 43) == 42
    assert calls == [1]
    assert memo.get(("extent", "629901", 2)) is None  # another revision: not known


def test_bounded_least_recently_used_out_first():
    memo = RevisionMemo(limit=2)
    memo.put("a", 1)
    memo.put("b", 2)
    assert memo.get("a") == 1  # a used: b is now the oldest
    memo.put("c", 3)
    assert memo.get("b") is None
    assert (memo.get("a"), memo.get("c"), len(memo)) == (1, 3, 2)


def test_concurrent_askers_wait_for_one_computation():
    memo = RevisionMemo()
    calls = []

    def slow():
        calls.append(1)
        time.sleep(0.2)
        return "figures"

    answers = []
    threads = [threading.Thread(target=lambda: answers.append(memo("k", slow))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == ["figures"] * 4
    assert calls == [1]


def test_one_memo_per_engine():
    first = create_engine("postgresql+psycopg://u@127.0.0.1:1/a")
    second = create_engine("postgresql+psycopg://u@127.0.0.1:1/b")
    memo_of(first).put("k", 1)
    assert memo_of(first).get("k") == 1
    assert memo_of(second).get("k") is None


def test_a_failed_computation_is_neither_kept_nor_left_locked():
    memo = RevisionMemo()

    def fails():
        raise LookupError("no such county")

    for _ in range(2):
        try:
            memo("k", fails)
        except LookupError:
            pass
    assert memo.get("k") is None and memo._computing == {}
    assert memo("k", lambda: 7) == 7
