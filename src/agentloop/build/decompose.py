"""DECOMPOSE: a coordinator session turns a feature request into a validated manifest.

The coordinator reads; it does not write. Its session is offered Read, Grep and Glob only
(`SessionLimits.allowed_tools`, which the CLI also takes as the set of tools the model is
shown), under `dontAsk` anything else is refused, its guard refuses any other tool and
any secret file, and its policy's permission rules deny edits of the whole repository.
It answers with the manifest as YAML in its final message, which agentloop parses: no
file of the coordinator's to trust, no path it could have written to. Its session runs
without Claude Code's OS sandbox, which confines Bash only; the coordinator has no Bash,
so asking for the sandbox would only make `--plan-only` need bubblewrap for nothing.

The request is the user's, given as data (it reaches the streams' prompts the same way);
the repository's file listing is an outsider's text and is fenced as data too, as are a
rejected manifest and the validator's findings when they go back to the coordinator.

The manifest is checked by build/manifest.py (its shape) and build/validate.py (whether
the streams fit together) before anything runs. A manifest with problems goes back to a
fresh session with the problems listed, up to `max_sessions` sessions in all; then
`DecomposeFailed` (exit 1), the last manifest kept on disk with its problems as comments
on top, for the user to fix and feed back with `--manifest`. Each session's cost and time
count against the run's budget and runtime; a cap reached stops with `LimitReached`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

import yaml

from agentloop import errors
from agentloop.agents import sandbox
from agentloop.agents.base import Agent, Guard, SessionLimits, SessionResult
from agentloop.build import manifest as manifest_mod
from agentloop.build import validate
from agentloop.build.manifest import ManifestError
from agentloop.build.model import Manifest
from agentloop.build.templates import TEMPLATES
from agentloop.errors import AgentloopError, LimitReached
from agentloop.install.files import write_atomic
from agentloop.loop.prompt import fence
from agentloop.rails.guard import make_guard
from agentloop.rails.paths import DEFAULT_SECRETS, ForbiddenPaths

READ_TOOLS = ("Read", "Grep", "Glob")
# Where a manifest written from a request goes, under the project: .agentloop/ is ignored
# locally (git.ignore_locally), so the plan never shows up as the user's change.
BUILDS_DIR = Path(".agentloop") / "builds"
# The repository's files listed in the prompt; the coordinator can Glob for the rest.
_LISTED = 300

Progress = Callable[[str], None]


class DecomposeFailed(AgentloopError):
    """The coordinator gave no valid manifest within its sessions; the last one is kept
    in `path` (None: it gave none at all)."""

    exit_code = errors.FAILURES_FOUND

    def __init__(
        self, message: str, *, hint: str, path: Path | None, problems: Sequence[str]
    ) -> None:
        super().__init__(message, hint=hint)
        self.path = path
        self.problems = tuple(problems)


@dataclass(frozen=True)
class DecomposeSettings:
    # The first session and the retries after it (2: a manifest with problems goes back
    # twice).
    max_sessions: int = 3
    limits: SessionLimits = field(
        default_factory=lambda: SessionLimits(max_turns=40, allowed_tools=READ_TOOLS)
    )
    # What the run may spend and take; the coordinator's sessions count against both.
    max_budget_usd: float = 10.0
    budget_per_session_usd: float = 2.0
    max_runtime_s: float = 1200
    forbidden: ForbiddenPaths = field(default_factory=ForbiddenPaths)
    secrets: tuple[str, ...] = DEFAULT_SECRETS


@dataclass(frozen=True)
class Decomposition:
    manifest: Manifest
    path: Path  # where the validated manifest was written
    sessions: int
    cost_usd: float
    duration_s: float


def default_path(root: Path, run_id: str) -> Path:
    return root / BUILDS_DIR / run_id / manifest_mod.MANIFEST_FILE


def decompose(
    top: Path,
    request: str,
    *,
    agent: Agent,
    out: Path,
    settings: DecomposeSettings | None = None,
    env: Mapping[str, str] | None = None,
    source: str | None = None,
    progress: Progress = lambda _message: None,
    clock: Callable[[], float] = time.monotonic,
) -> Decomposition:
    """A validated manifest for `request` in the git work tree `top`, written to `out`
    (the last invalid one is left there when none validates). `source`: how to name `out`
    to the user (default: its path). Raises DecomposeFailed or LimitReached."""
    if not request.strip():
        raise errors.UsageError("the feature request is empty", hint="say what to build")
    settings = settings or DecomposeSettings()
    top = top.resolve()
    name = source or str(out)
    forbidden = replace(settings.forbidden, root=str(top))
    limits = replace(settings.limits, allowed_tools=READ_TOOLS)
    policy = read_only_policy(top, forbidden=forbidden, secrets=settings.secrets)
    guard = read_only_guard(make_guard(forbidden, secrets=settings.secrets))
    files = validate.repository_files(top)
    started = clock()
    spent = 0.0
    kept = False  # whether `out` holds a manifest of this coordinator's
    earlier: tuple[str, Sequence[str]] | None = None
    problems: Sequence[str] = ()
    for number in range(1, settings.max_sessions + 1):
        left_s = settings.max_runtime_s - (clock() - started)
        left_usd = settings.max_budget_usd - spent
        if left_s <= 0 or left_usd <= 0:
            cap = "runtime" if left_s <= 0 else "budget"
            raise LimitReached(
                f"the run's {cap} was spent writing the manifest ({number - 1} coordinator "
                "session(s))",
                hint=_kept_hint(name) if kept else _WRITE_IT,
            )
        progress(f"decompose: coordinator session {number} of {settings.max_sessions}")
        prompt = decompose_prompt(request, files=files, forbidden=forbidden, earlier=earlier)
        result = agent.run(
            prompt,
            cwd=top,
            limits=replace(
                limits,
                max_budget_usd=min(settings.budget_per_session_usd, left_usd),
                timeout_s=left_s,
            ),
            env=dict(env or {}),
            policy=policy,
            guard=guard,
        )
        spent += result.cost_usd
        text, data, problems = _judge(result, request, top=top, forbidden=forbidden, name=name)
        if not problems:
            plan = manifest_mod.parse(_dump(data), source=name)
            _write(out, _dump(manifest_mod.as_data(plan)), header=_HEADER.format(out=name))
            return Decomposition(plan, out, number, spent, clock() - started)
        if text:
            # An answer with nothing in it does not replace one the user could fix.
            _write(out, _dump(data) if data is not None else text, header=_invalid(name, problems))
            kept = True
        earlier = (text or "(no manifest)", problems)
    count = len(problems)
    left = f"{count} problem{'s' if count != 1 else ''} left"
    raise DecomposeFailed(
        f"the coordinator wrote no valid manifest in {settings.max_sessions} session(s) "
        + (f"({left}); the last is kept in {name}" if kept else f"({problems[0]})"),
        hint=_kept_hint(name) if kept else _WRITE_IT,
        path=out if kept else None,
        problems=problems,
    )


def read_only_policy(
    top: Path, *, forbidden: ForbiddenPaths, secrets: Sequence[str]
) -> sandbox.Policy:
    """The coordinator's: the secrets unreadable as for any session, and no edit anywhere
    in the repository (its top among the denied paths), without the OS sandbox (see the
    module docstring)."""
    policy = sandbox.build_policy(
        top=top, repo=top, forbidden=forbidden, secrets=secrets, sandboxed=False
    )
    return replace(policy, deny_write=(*policy.deny_write, top))


def read_only_guard(rails: Guard) -> Guard:
    """`rails` (secrets, forbidden paths) behind a refusal of every tool but READ_TOOLS."""

    def guard(tool: str, tool_input: Mapping[str, Any]) -> str | None:
        if tool not in READ_TOOLS:
            return (
                f"agentloop: the coordinator only reads ({', '.join(READ_TOOLS)}); it may "
                f"not use {tool}. Answer with the manifest as YAML instead."
            )
        return rails(tool, tool_input)

    return guard


def decompose_prompt(
    request: str,
    *,
    files: Sequence[str],
    forbidden: ForbiddenPaths,
    earlier: tuple[str, Sequence[str]] | None = None,
) -> str:
    """The coordinator's prompt; `earlier`: its last answer and the problems found in it."""
    text = resources.files("agentloop.build").joinpath("prompts/decompose.md").read_text("utf-8")
    shown = "\n".join(files[:_LISTED])
    more = f"\n… and {len(files) - _LISTED} more" if len(files) > _LISTED else ""
    listing = (
        fence(shown + more, f"Its files ({len(files)}, tracked and untracked)")
        if files
        else ("It has no files yet.")
    )
    templates = "\n".join(
        f"- `{name}`: {guide.delivers}." + (f" {guide.guidance}" if guide.guidance else "")
        for name, guide in TEMPLATES.items()
    )
    schema = resources.files("agentloop.schemas").joinpath("build-manifest.schema.json")
    retry = ""
    if earlier is not None:
        answer, problems = earlier
        retry = (
            "\n## Your last manifest was rejected\nWrite it again with every problem "
            "fixed, keeping what was right.\n\n"
            + fence(answer, "Your last answer")
            + "\n\n"
            + fence("\n".join(f"- {p}" for p in problems), "What the validator found")
            + "\n"
        )
    return Template(text).substitute(
        request=fence(request, "The feature request"),
        files=listing,
        templates=templates,
        forbidden=", ".join(f"`{p}`" for p in forbidden.patterns) or "(none)",
        schema=schema.read_text("utf-8").strip(),
        earlier=retry,
    )


# --------------------------------------------------------------------------- the answer

_FENCE = re.compile(
    r"^(?P<ticks>`{3,}|~{3,})[ \t]*(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^(?P=ticks)[ \t]*$",
    re.MULTILINE | re.DOTALL,
)


def manifest_text(answer: str) -> str:
    """The YAML of a final message: its last ```yaml block, else its only fenced block,
    else the whole message."""
    blocks = list(_FENCE.finditer(answer))
    yaml_blocks = [b for b in blocks if b["lang"].lower() in ("yaml", "yml")]
    if yaml_blocks:
        return yaml_blocks[-1]["body"]
    if len(blocks) == 1:
        return blocks[0]["body"]
    return answer


def _judge(
    result: SessionResult, request: str, *, top: Path, forbidden: ForbiddenPaths, name: str
) -> tuple[str, dict[str, Any] | None, Sequence[str]]:
    """The answer's YAML, its mapping (the request put in) and the problems found."""
    text = manifest_text(result.text).strip()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        data = None
    if not text or (not isinstance(data, dict) and not _FENCE.search(result.text)):
        # Prose, or nothing: no manifest to keep, or to show the coordinator again.
        detail = f": {result.errors[0]}" if result.errors else ""
        return (
            "",
            None,
            [
                f"the session ended ({result.outcome}) with no manifest in its final message "
                f"(a ```yaml block){detail}"
            ],
        )
    if not isinstance(data, dict):
        try:
            manifest_mod.parse(text, source=name)
        except ManifestError as exc:
            return text, None, exc.problems
        return text, None, ["expected a mapping with `request`, `streams` and `contracts`"]
    # The request as the user gave it, whatever the coordinator made of it: the build's
    # commit message and every stream's prompt quote it.
    data = {"request": request, **{k: v for k, v in data.items() if k != "request"}}
    try:
        plan = manifest_mod.parse(_dump(data), source=name)
        validate.check(plan, top=top, forbidden=forbidden, source=name)
    except ManifestError as exc:
        return text, data, exc.problems
    return text, data, ()


# --------------------------------------------------------------------------- the file

_HEADER = (
    "# Written by `agentloop parallel-build` from the request below (a coordinator\n"
    "# session's plan, validated). Edit it if you like, then build it with:\n"
    "#   agentloop parallel-build --manifest {out}\n"
)


def _invalid(name: str, problems: Sequence[str]) -> str:
    listed = "".join(f"#   - {line}\n" for p in problems for line in p.splitlines())
    return (
        "# The coordinator's last manifest: INVALID. Fix these, then check it with\n"
        f"#   agentloop parallel-build --manifest {name} --plan-only\n{listed}"
    )


_WRITE_IT = (
    "say more about what to build, raise the caps (run.max_runtime, run.max_budget_usd), or "
    "write the manifest yourself and pass --manifest"
)


def _kept_hint(name: str) -> str:
    return (
        f"fix the problems listed at the top of {name}, then run `agentloop parallel-build "
        f"--manifest {name} --plan-only`"
    )


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def _write(path: Path, text: str, *, header: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = text if text.endswith("\n") else text + "\n"
    write_atomic(path, (header + body).encode("utf-8"), follow=True)
