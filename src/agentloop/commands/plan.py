"""`agentloop plan`: the failing tasks in groups that can be fixed apart, for a matrix of
jobs (`--matrix`, JSON for GitHub Actions' `fromJSON`). Tasks whose reach through the
import graph overlaps (they lead to a file in common) share a group: fixed in separate
jobs, they could make conflicting changes to it, which `agentloop merge-results` would
then have to drop."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agentloop import detection, errors, git, output, suites
from agentloop.commands._project import require_tests
from agentloop.config import load_config
from agentloop.errors import UsageError
from agentloop.failures import imports
from agentloop.failures.model import Task
from agentloop.loop.jobs import reach


def groups(tasks: Sequence[Task], graph: dict[str, set[str]]) -> list[list[Task]]:
    """`tasks` joined wherever their reaches share a file, in the tasks' order."""
    reaches = [reach(t, graph) for t in tasks]
    parent = list(range(len(tasks)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(tasks)):
        for j in range(i):
            if reaches[i] & reaches[j]:
                parent[find(i)] = find(j)
    joined: dict[int, list[Task]] = {}
    for i, task in enumerate(tasks):
        joined.setdefault(find(i), []).append(task)
    return list(joined.values())


def plan(*, repo: Path, matrix: bool, as_json: bool) -> int:
    root = repo.resolve()
    if not root.is_dir():
        raise UsageError(f"{repo} is not a directory", hint="pass an existing project with --repo")
    config, _ = load_config(root)
    found = suites.discover(root, config)
    with output.progress(not (as_json or matrix)) as progress:
        result = detection.detect(
            root,
            found,
            git=git.find_toplevel(root) is not None,
            reruns=config.detect.flaky_reruns,
            rerun_timeout=config.detect.rerun_timeout,
            progress=progress,
        )
    require_tests(result)
    graph = imports.import_graph(root)
    docs = [_group_doc(group, graph) for group in groups(result.tasks, graph)]
    include = [{"task": d["task"], "title": d["title"]} for d in docs]
    if matrix:
        # One line: `echo "matrix=$(agentloop plan --matrix)" >> "$GITHUB_OUTPUT"`.
        print(json.dumps({"include": include}, separators=(",", ":")))
    elif as_json:
        output.print_json({"groups": docs, "matrix": {"include": include}})
    else:
        output.print_plan(docs)
    return errors.OK


def _group_doc(group: Sequence[Task], graph: dict[str, set[str]]) -> dict[str, Any]:
    files = sorted(set().union(*(reach(t, graph) for t in group)))
    first = group[0]
    where = str(first.crash_location) if first.crash_location else first.failures[0].test_id
    more = f" and {len(group) - 1} more" if len(group) > 1 else ""
    return {
        # What `agentloop run --task` takes, comma-separated: the tasks' fingerprints,
        # which another checkout's baseline gives its tasks too (ids come from messages).
        "task": ",".join(t.fingerprint for t in group),
        "title": f"{first.category} at {where}{more}"[:100],
        "tests": sum(len(t.failures) for t in group),
        "files": files,
    }
