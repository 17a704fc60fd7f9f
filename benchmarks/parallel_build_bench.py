"""Benchmark a parallel build: 4 streams at once against the same streams one at a time.

What it measures
----------------
One generated repository (a small shop in Python) and a manifest of four streams: a
contracts stream (`contracts/**`: the fields of an order) and three that depend on it
(`api/**`, `invoices/**`, `web/**`), each owning its own folder, each folder with a test
that fails until the stream writes its module against the contract.

A scripted model (agentloop.testing.model_server) drives the real Claude Code CLI (bundled
in claude-agent-sdk, through `agentloop.agents.claude.ClaudeCodeAgent`, the sandbox on as
by default), answering each request after ``--turn-seconds`` (default 2). Each stream's
session takes four replies: read its module, rewrite it (Edit), run its test with Bash, say it is
done; about 8 s of model time a stream at the default delay.

Two contestants, in this one invocation, one after the other, each on a fresh copy of the
repository with its own HOME and a fresh script with the same delay per reply:

* ``jobs1``: the serial baseline, ``--jobs 1``: the same streams, one at a time.
* ``jobs4``: ``--jobs 4``: the three dependents at once once the contracts are merged.

Each runs ``agentloop parallel-build --manifest build.yaml --jobs N --json`` in its copy
(the sandbox on, as by default): the base's suite, the streams, each merged as it is built,
the full suite once, one squashed commit on ``agentloop/build-<run>``.

Columns: wall time of the contestant's process; the sum of its streams' times (the serial
estimate: what the streams cost one after the other); model requests; streams built; and
whether the whole suite passes on the build's commit (checked afterwards, untimed, by a
separate pytest run on its files). Then the ratio parallel / serial of the wall
times, and the ideal ratio for this dependency shape, from the serial run's stream times:
(contracts + max(others)) / (contracts + sum(others)), 0.5 for four equal streams.

How to run it
-------------
    make bench-parallel-build                                       # 2 s per reply
    .venv/bin/python benchmarks/parallel_build_bench.py --turn-seconds 0 --only jobs4 --json
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentloop.testing.model_server import (
    CWD,
    Match,
    ModelServer,
    Text,
    ToolUse,
    Turn,
    offline_env,
)
from agentloop.testing.repos import GIT_IDENTITY, agentloop_env, git_init, write_tree

CONTESTANTS = ("jobs1", "jobs4")
FIELDS = ("id", "total", "currency")
PYTEST = "python -m pytest -q -p no:cacheprovider"


# ---------------------------------------------------------------- the repository


@dataclass(frozen=True)
class Planted:
    """One stream: the folder it owns, its module, and the code the scripted model
    writes there."""

    id: str
    title: str
    template: str
    path: str  # the module it writes
    stub: str
    code: str
    depends_on: tuple[str, ...] = ()

    @property
    def folder(self) -> str:
        return self.path.split("/", 1)[0]

    @property
    def test(self) -> str:
        return f"{self.folder}/test_{self.folder}.py"


def _module(name: str, body: str) -> str:
    return f'"""{name}."""\n\n{textwrap.dedent(body).strip()}\n'


STREAMS = (
    Planted(
        "contracts",
        "The order's fields",
        "contracts",
        "contracts/order.py",
        _module("The order contract", "FIELDS: tuple[str, ...] = ()"),
        _module("The order contract", f"FIELDS: tuple[str, ...] = {FIELDS!r}"),
    ),
    Planted(
        "api",
        "POST /orders",
        "api-endpoint",
        "api/orders.py",
        _module("The orders endpoint", "def create(values):\n    raise NotImplementedError"),
        _module(
            "The orders endpoint",
            """
            from contracts.order import FIELDS


            def create(values):
                return {name: values.get(name) for name in FIELDS}
            """,
        ),
        ("contracts",),
    ),
    Planted(
        "invoices",
        "Invoice lines",
        "data-model",
        "invoices/lines.py",
        _module("Invoices", "def line(order):\n    raise NotImplementedError"),
        _module(
            "Invoices",
            """
            from contracts.order import FIELDS


            def line(order):
                return " ".join(str(order[name]) for name in FIELDS)
            """,
        ),
        ("contracts",),
    ),
    Planted(
        "web",
        "The orders table",
        "ui-feature",
        "web/table.py",
        _module("The orders table", "def header():\n    raise NotImplementedError"),
        _module(
            "The orders table",
            """
            from contracts.order import FIELDS


            def header():
                return " | ".join(name.upper() for name in FIELDS)
            """,
        ),
        ("contracts",),
    ),
)

TESTS = {
    "contracts": f"""\
        from contracts.order import FIELDS


        def test_an_order_has_its_fields():
            assert FIELDS == {FIELDS!r}
        """,
    "api": """\
        from api.orders import create


        def test_create_keeps_the_contract_fields():
            assert create({"id": 1, "total": 5, "currency": "EUR", "x": 0}) == {
                "id": 1, "total": 5, "currency": "EUR"}
        """,
    "invoices": """\
        from invoices.lines import line


        def test_a_line_lists_the_fields_in_order():
            assert line({"id": 7, "total": 12, "currency": "EUR"}) == "7 12 EUR"
        """,
    "web": """\
        from web.table import header


        def test_the_header_names_the_fields():
            assert header() == "ID | TOTAL | CURRENCY"
        """,
}


def manifest_text() -> str:
    lines = [
        "request: " + json.dumps("Orders end to end: fields, endpoint, invoices, table."),
        "contracts:",
        "  - {name: order, kind: types, path: contracts/order.py, "
        "description: the fields of an order}",
        "streams:",
    ]
    for s in STREAMS:
        lines += [
            f"  - id: {s.id}",
            f"    title: {json.dumps(s.title)}",
            f"    template: {s.template}",
            f"    prompt: {json.dumps(f'Write {s.path} so that {s.test} passes.')}",
            f"    owns: ['{s.folder}/**']",
            f"    tests: [{json.dumps(f'{PYTEST} {s.folder}')}]",
        ]
        if s.depends_on:
            lines.append(f"    depends_on: [{', '.join(s.depends_on)}]")
    return "\n".join(lines) + "\n"


def generate(root: Path) -> Path:
    """The repository, committed on `main`, with build.yaml in it."""
    files: dict[str, str] = {
        "README.md": "A shop.\n",
        ".gitignore": "__pycache__/\n.agentloop/\n",
        "pyproject.toml": '[tool.pytest.ini_options]\npythonpath = ["."]\n',
        "build.yaml": manifest_text(),
    }
    for s in STREAMS:
        files[f"{s.folder}/__init__.py"] = ""
        files[s.path] = s.stub
        files[s.test] = TESTS[s.id]
    write_tree(root, files)
    return git_init(root)


# ---------------------------------------------------------------- the scripted model


def key(stream_id: str) -> str:
    """What only `stream_id`'s prompts contain (build/prompts/stream.md)."""
    return f"Your stream: {stream_id} ("


def script(delay: float) -> list[Turn]:
    """Per stream, one session of four replies: read, edit, test, done."""
    turns: list[Turn] = []
    for s in STREAMS:
        file = f"{CWD}/{s.path}"
        steps: list[list[Any]] = [
            [Text(f"Reading {s.path}."), ToolUse("Read", {"file_path": file})],
            # Edit, not Write: agentloop's sessions have no Write tool (config.agent).
            [ToolUse("Edit", {"file_path": file, "old_string": s.stub, "new_string": s.code})],
            [ToolUse("Bash", {"command": f"{PYTEST} {s.folder}", "description": "Run tests"})],
            [Text(f"{s.path} is written and {s.test} passes.")],
        ]
        turns += [
            Turn(blocks, match=Match(prompt=key(s.id), assistant_turns=n), delay_s=delay)
            for n, blocks in enumerate(steps)
        ]
    return turns


def fallback(delay: float) -> Turn:
    return Turn([Text("Nothing more to do.")], delay_s=delay)


# ---------------------------------------------------------------- contestants


@dataclass(frozen=True)
class Result:
    name: str
    label: str
    available: bool
    note: str = ""
    wall_s: float = 0.0
    build_s: float = 0.0  # the build's own wall time, as its --json reports it
    stream_sum_s: float = 0.0  # its serial estimate: the streams' own times, summed
    requests: int = 0
    built: int = 0
    streams: int = 0
    green: bool = False
    stream_s: Mapping[str, tuple[float, float]] = field(default_factory=dict)


def suite_passes(repo: Path, commit: str, into: Path) -> bool:
    """Whether the whole suite passes on `commit`, checked apart from the build (its
    files exported to `into`; not timed)."""
    data = subprocess.run(
        ["git", "archive", "--format=tar", commit], cwd=repo, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        archive.extractall(into, filter="data")
    done = subprocess.run(
        PYTEST.split(), cwd=into, capture_output=True, stdin=subprocess.DEVNULL, check=False
    )
    return done.returncode == 0


def outcome(
    name: str, doc: Mapping[str, Any], *, wall: float, requests: int, repo: Path, scratch: Path
) -> Result:
    """A contestant's row from what `agentloop parallel-build --json` printed."""
    streams = doc["streams"]
    times = {s["id"]: (float(s["started_s"]), float(s["finished_s"])) for s in streams}
    commit = doc.get("commit")
    return Result(
        name,
        f"--jobs {name[4:]}",
        True,
        wall_s=wall,
        build_s=float(doc["wall_s"]),
        stream_sum_s=float(doc["serial_estimate_s"]),
        requests=requests,
        built=sum(1 for s in streams if s["outcome"] == "built"),
        streams=len(STREAMS),
        green=bool(commit) and suite_passes(repo, commit, scratch),
        stream_s=times,
    )


def run_contestant(base: Path, pristine: Path, jobs: int, delay: float, timeout: float) -> Result:
    name, label = f"jobs{jobs}", f"--jobs {jobs}"
    root = base / name
    repo, home = root / "repo", root / "home"
    shutil.copytree(pristine, repo, symlinks=True)
    home.mkdir(parents=True)
    argv = [sys.executable, "-m", "agentloop", "parallel-build", "--manifest", "build.yaml"]
    argv += ["--jobs", str(jobs), "--json"]
    with ModelServer(script(delay), fallback=fallback(delay)) as server:
        env = agentloop_env(home)
        env.update(GIT_IDENTITY)
        env.update(offline_env(home, server.base_url))
        start = time.monotonic()
        try:
            done = subprocess.run(
                argv,
                cwd=repo,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return Result(name, label, False, f"failed: still running after {timeout:g} s")
        wall = time.monotonic() - start
        requests = len(server.messages_requests())
        # What the model saw, for --keep: each request's stream, turn and tool results.
        with (root / "model.jsonl").open("w") as log:
            for request in server.messages_requests():
                c = request.conversation
                stream = next((s.id for s in STREAMS if key(s.id) in c.prompt), None)
                results = [r.content[:300] for r in c.latest_tool_results]
                log.write(json.dumps([stream, c.assistant_turns, results]) + "\n")
    (root / "build.json").write_text(done.stdout)
    (root / "build.stderr").write_text(done.stderr)
    try:
        doc = json.loads(done.stdout)
    except json.JSONDecodeError:
        why = f"no JSON (exit {done.returncode}): {done.stderr.strip()[-400:]}"
        return Result(name, label, False, why)
    result = outcome(name, doc, wall=wall, requests=requests, repo=repo, scratch=root / "result")
    if done.returncode != 0:
        result = dataclasses.replace(result, note=f"exit {done.returncode}")
    return result


def ideal_ratio(times: Mapping[str, tuple[float, float]]) -> float | None:
    """(contracts + max(others)) / (contracts + sum(others)): the best --jobs 4 can do
    against --jobs 1 with these stream times, nothing else counted."""
    if len(times) != len(STREAMS):
        return None
    length = {k: b - a for k, (a, b) in times.items()}
    others = [length[s.id] for s in STREAMS if s.id != "contracts"]
    return (length["contracts"] + max(others)) / (length["contracts"] + sum(others))


# ---------------------------------------------------------------- output


def table(results: Sequence[Result], delay: float) -> str:
    lines = [
        f"4 streams: contracts, then api, invoices and web (each depends on contracts); "
        f"4 model replies a stream, {delay:g} s each",
        "",
        f"{'contestant':<12}{'wall s':>9}{'build s':>9}{'streams s':>11}{'requests':>10}"
        f"{'built':>7}  suite",
    ]
    for r in results:
        if not r.available:
            lines.append(f"{r.label:<12}  {r.note}")
            continue
        lines.append(
            f"{r.label:<12}{r.wall_s:>9.1f}{r.build_s:>9.1f}{r.stream_sum_s:>11.1f}"
            f"{r.requests:>10}{f'{r.built}/{r.streams}':>7}  "
            + ("green" if r.green else "RED")
            + (f"  ({r.note})" if r.note else "")
        )
    lines.append("")
    by = {r.name: r for r in results if r.available}
    for r in by.values():
        spans = "  ".join(f"{k} {a:.1f}-{b:.1f}" for k, (a, b) in r.stream_s.items())
        lines.append(f"{r.label} stream times (s from the build's start): {spans}")
    if "jobs1" in by and "jobs4" in by:
        ratio = by["jobs4"].wall_s / by["jobs1"].wall_s
        ideal = ideal_ratio(by["jobs1"].stream_s)
        lines.append(
            f"parallel / serial wall: {ratio:.2f}"
            + (f"   ideal for this shape: {ideal:.2f}" if ideal is not None else "")
            + "   (the issue's goal: a third; this shape's floor is the ideal)"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--turn-seconds", type=float, default=2.0)
    parser.add_argument("--only", default=",".join(CONTESTANTS))
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    options = parser.parse_args(args)
    wanted = [c for c in options.only.split(",") if c]
    unknown = set(wanted) - set(CONTESTANTS)
    if unknown:
        parser.error(f"unknown contestant(s): {', '.join(sorted(unknown))}")
    base = Path(tempfile.mkdtemp(prefix="parallel-build-bench-"))
    try:
        pristine = generate(base / "pristine")
        results = [
            run_contestant(base, pristine, int(name[4:]), options.turn_seconds, options.timeout)
            for name in wanted
        ]
    finally:
        if not options.keep:
            shutil.rmtree(base, ignore_errors=True)
    if options.json:
        doc = {
            "turn_seconds": options.turn_seconds,
            "results": [dataclasses.asdict(r) for r in results],
        }
        print(json.dumps(doc, indent=2))
    else:
        print(table(results, options.turn_seconds))
        if options.keep:
            print(f"\nkept: {base}")
    return 0 if all(r.available and r.green for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
