"""Run parts of the reliability harness: `python -m benchmarks.reliability PART … [options]`.

    .venv/bin/python -m benchmarks.reliability load|faults|hostile|isolation|edits|disk|all
                     [--compounds 100000] [--seconds 60] [--keep DIR] [--json FILE]

Each part is a module named in PARTS, imported only when asked for (a part not written yet is
skipped with a message); each adds its own options (`add_arguments(parser)`) and returns its
results (`run(args) -> dict`), printed as JSON at the end. The work folder (--keep DIR, else a
temporary one, removed at the end) holds the private cluster the parts share.
"""

import argparse
import importlib
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

PARTS = {
    "load": "benchmarks.reliability.load",
    "faults": "benchmarks.reliability.faults",
    "hostile": "benchmarks.reliability.hostile",
    "isolation": "benchmarks.reliability.isolation",
    "edits": "benchmarks.reliability.edits",
    "disk": "benchmarks.reliability.disk",
}


def modules(names: list[str]) -> dict:
    found = {}
    for name in names:
        try:
            found[name] = importlib.import_module(PARTS[name])
        except ModuleNotFoundError as exc:
            if exc.name != PARTS[name]:
                raise  # the part exists and something it imports does not
            print(f"[{name}] {PARTS[name]} is not there yet: skipped", flush=True)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.reliability",
        description=__doc__.splitlines()[0],
        conflict_handler="resolve",  # parts may declare the same option
    )
    parser.add_argument("parts", nargs="+", choices=[*PARTS, "all"], metavar="PART",
                        help=f"one or more of {', '.join(PARTS)}, or all")  # fmt: skip
    parser.add_argument("--compounds", type=int, default=100_000, help="the county's size")
    parser.add_argument("--seconds", type=float, default=60, help="each timed run")
    parser.add_argument("--keep", type=Path, help="keep the cluster (and the county) here")
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    chosen = sys.argv[1:]
    wanted = list(PARTS) if "all" in chosen else [p for p in chosen if p in PARTS]
    parts = modules(wanted)
    for module in parts.values():
        module.add_arguments(parser)
    args = parser.parse_args()
    args.folder, args.started_cluster = None, False
    results: dict = {}
    try:
        for name, module in parts.items():
            print(f"[{name}] …", flush=True)
            results[name] = module.run(args)
            print(f"[{name}] " + json.dumps(results[name], ensure_ascii=False), flush=True)
    finally:
        if args.folder and args.started_cluster:
            from geo.db.cluster import LocalCluster

            LocalCluster(args.folder / "cluster", 0).stop()
        if args.folder and not args.keep:
            shutil.rmtree(args.folder, ignore_errors=True)
    text = json.dumps(results, ensure_ascii=False, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
