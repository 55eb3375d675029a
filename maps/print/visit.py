"""The visit pack drawn: a cover, then a page per stop; long packs are split between two
processes and the parts merged."""

import math
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from queue import Empty

from geo.query.selection import Selection
from maps.print.cover import cover_page
from maps.print.merge import merger
from maps.print.pack import VisitPack, plan_visit
from maps.print.sheet import write_pdf
from maps.print.stop import stop_page
from maps.print.text import clean

PROCESS_MIN_PAGES = 24  # below this a second process costs more than it saves


def visit_pdf(
    conn,
    selection: Selection,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    keep_order: bool | None = None,
    data_dir: Path | None = None,
) -> bytes:
    """The visit pack as PDF bytes: cover plus one page per compound (with its latest site
    photo from `data_dir`; None: no photos)."""
    return render_visit(plan_visit(conn, selection, keep_order, data_dir), workers, progress)


def default_workers(pages: int) -> int:
    """Two processes for a long pack when the pages can be merged afterwards, else one."""
    if pages < PROCESS_MIN_PAGES or merger() is None:
        return 1
    return max(1, min(2, len(os.sched_getaffinity(0))))


def render_visit(
    pack: VisitPack,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> bytes:
    """Draw the pack; with `workers` > 1 the pages are split between processes and merged."""
    total = pack.total_pages
    workers = default_workers(total) if workers is None else max(1, min(workers, total))
    if workers > 1 and merger() is None:
        workers = 1
    title = f"{clean(pack.selection.county.name)} {clean(pack.selection.area.label)} 现场办公资料"
    if workers == 1:
        return _render_pages(pack, list(range(total)), title, progress)
    size = math.ceil(total / workers)
    chunks = [list(range(i, min(i + size, total))) for i in range(0, total, size)]
    context = _mp_context()
    queue = context.Queue()
    with ProcessPoolExecutor(
        len(chunks), mp_context=context, initializer=_worker_init, initargs=(queue,)
    ) as pool:
        futures = [pool.submit(_render_chunk, pack, chunk, title) for chunk in chunks]
        done = 0
        while done < total and not all(f.done() for f in futures):
            try:
                done += queue.get(timeout=0.2)
            except Empty:
                continue
            if progress:
                progress(done, total)
        parts = [f.result() for f in futures]  # re-raises a worker's error here
    if progress:
        progress(total, total)
    return merger()(parts, title)


def _mp_context():
    methods = multiprocessing.get_all_start_methods()
    # never fork: the server has threads and database connections open
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    if context.get_start_method() == "forkserver":
        context.set_forkserver_preload(["maps.print"])  # workers start with it imported
    return context


_progress_queue = None


def _worker_init(queue) -> None:
    global _progress_queue
    _progress_queue = queue


def _render_chunk(pack: VisitPack, pages: list[int], title: str) -> bytes:
    def tick(_done: int, _total: int) -> None:
        if _progress_queue is not None:
            _progress_queue.put(1)

    return _render_pages(pack, pages, title, tick)


def _render_pages(pack: VisitPack, pages: list[int], title: str, progress) -> bytes:
    def figures():
        for n, page in enumerate(pages, start=1):
            yield cover_page(pack, title) if page == 0 else stop_page(pack, pack.stops[page - 1])
            if progress:  # runs once the page is written: the next one is asked for
                progress(n, len(pages))

    return write_pdf(figures(), title)
