"""Simulation of a dataset repo's layout over a year: replicas pushing every few minutes, a daily
compaction, and the Hub's limits (entries per folder, files per repo, files per commit, commits per hour).

Run::

    .venv/bin/python bench/bench_layout.py                        # 4 replicas, 5-minute pushes, 365 days
    .venv/bin/python bench/bench_layout.py --replicas 8 --no-compaction

No Hub is involved: the repo is a set of paths. Pushes name their files with the app's own code
(``FeedbackStore``'s shard names, :func:`feedback.hub.layout.repo_path`), each replica adding one file per
record kind per push (the worst case: every kind has new records every push); compaction plans with the
code ``python -m feedback compact`` runs (:func:`feedback.hub.compact.due_partitions`,
:func:`~feedback.hub.compact.merge_groups`), once a day at a random hour, plus one commit rewriting the
``flagged`` view. It prints the largest folder, the file count of the repo, the largest commit and the
busiest hour, at the end of each month and overall.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter, deque
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from feedback.hub.compact import (
    MAX_COMMIT_FILES,
    due_partitions,
    merge_groups,
    needs_compaction,
)
from feedback.hub.layout import COMPACTED_MARK, FLAGGED, PARQUET, repo_path
from schemas.records import RECORD_TYPES

LIMITS = {"folder": 10_000, "repo": 100_000, "commit": MAX_COMMIT_FILES, "hour": 128}
"""The Hub's limits: entries per folder, files per repo, files per commit (recommended), commits per hour."""


class Repo:
    """The simulated repo: its paths, and what the pushes and compactions did to it."""

    def __init__(self) -> None:
        self.files: set[str] = {"README.md", ".gitattributes"}
        self.largest_commit = 0
        self.commit_times: deque[datetime] = deque()
        self.busiest_hour = 0
        self.commits = 0

    def commit(self, when: datetime, added: list[str], deleted: list[str]) -> None:
        self.files.difference_update(deleted)
        self.files.update(added)
        self.largest_commit = max(self.largest_commit, len(added) + len(deleted))
        self.commits += 1
        self.commit_times.append(when)
        while self.commit_times and self.commit_times[0] <= when - timedelta(hours=1):
            self.commit_times.popleft()
        self.busiest_hour = max(self.busiest_hour, len(self.commit_times))

    def largest_folder(self) -> tuple[str, int]:
        """The folder with the most entries (files and subfolders) and how many."""
        entries: dict[str, set[str]] = {}
        for path in self.files:
            parts = path.split("/")
            for depth in range(len(parts)):
                folder = "/".join(parts[:depth]) or "/"
                entries.setdefault(folder, set()).add(parts[depth])
        folder, names = max(entries.items(), key=lambda item: len(item[1]))
        return folder, len(names)


def compact(repo: Repo, when: datetime) -> int:
    """One compaction run at ``when``: the commits it makes (as ``feedback.hub.compact.compact_repo``)."""
    made = 0
    for kind in RECORD_TYPES:
        paths = [p for p in repo.files if p.startswith(f"{kind}/")]
        for partition, files in due_partitions(paths, when.date()).items():
            while needs_compaction(files):
                merged = []
                for group in merge_groups(files):
                    if len(group) == 1 and group[0].endswith(PARQUET):
                        merged.append(group[0])
                        continue
                    target = (
                        f"{partition}/{group[0].rsplit('/', 1)[-1].split('~')[0][: -len(PARQUET)]}"
                        f"{COMPACTED_MARK}{made:08x}{PARQUET}"
                    )
                    repo.commit(when, [target], group)
                    made += 1
                    merged.append(target)
                files = merged
    flagged = [p for p in repo.files if p.startswith(f"{FLAGGED}/")]
    repo.commit(when, [f"{FLAGGED}/{FLAGGED}-{when:%Y%m%d}-00000{PARQUET}"], flagged)
    return made + 1


def simulate(*, days: int, replicas: int, every_minutes: float, compaction: bool, seed: int = 0) -> Repo:
    rng = random.Random(seed)
    repo, start = Repo(), datetime(2026, 1, 1, tzinfo=UTC)
    writers = [f"{rng.getrandbits(48):012x}" for _ in range(replicas)]
    sequence = Counter()
    offsets = [rng.uniform(0, every_minutes) for _ in range(replicas)]
    compaction_hour = rng.uniform(0, 24)
    started = time.perf_counter()
    for day in range(days):
        events = []
        for replica in range(replicas):
            minute = offsets[replica]
            while minute < 24 * 60:
                events.append((minute, replica))
                minute += every_minutes
        if compaction:
            events.append((compaction_hour * 60, -1))
        for minute, replica in sorted(events):
            when = start + timedelta(days=day, minutes=minute)
            if replica < 0:
                compact(repo, when)
                continue
            added = []
            for kind in RECORD_TYPES:
                sequence[replica] += 1
                name = f"{when:%Y%m%dT%H%M%S%fZ}-{writers[replica]}-{sequence[replica]:04d}.jsonl"
                added.append(repo_path(kind, name))
            repo.commit(when, added, [])
        if (day + 1) % 30 == 0 or day + 1 == days:
            folder, entries = repo.largest_folder()
            print(
                f"day {day + 1:3d}: {len(repo.files):7,d} files in the repo, largest folder {folder} "
                f"({entries:,} entries), {repo.commits:,} commits ({time.perf_counter() - started:.0f} s)",
                flush=True,
            )
    return repo


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--replicas", type=int, default=4)
    parser.add_argument("--every", type=float, default=5.0, help="minutes between pushes (default 5)")
    parser.add_argument("--no-compaction", action="store_true")
    args = parser.parse_args(argv)
    repo = simulate(days=args.days, replicas=args.replicas, every_minutes=args.every, compaction=not args.no_compaction)
    folder, entries = repo.largest_folder()
    figures = {"folder": entries, "repo": len(repo.files), "commit": repo.largest_commit, "hour": repo.busiest_hour}
    print(
        f"\n{args.replicas} replicas, a push every {args.every:g} min, {args.days} days, "
        f"compaction {'off' if args.no_compaction else 'daily'}:"
    )
    for name, value in figures.items():
        verdict = "ok" if value <= LIMITS[name] else "OVER"
        label = {
            "folder": f"largest folder ({folder})",
            "repo": "files in the repo",
            "commit": "files in the largest commit",
            "hour": "commits in the busiest hour",
        }[name]
        print(f"  {label:<44} {value:8,d}   limit {LIMITS[name]:,}   {verdict}")
    return 0 if all(figures[name] <= LIMITS[name] for name in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
