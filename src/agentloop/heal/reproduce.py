"""REPRODUCE: a selected triage group becomes one new failing test that crashes the way
production crashed, or a reason why not. The FIX step takes the test as its target.

For each group, in order, until the deadline:

1. The crash frame (the group's signature: exception type + the innermost in-app frame,
   triage.signature) is located in the repository (`locate`): the tracked file whose path
   ends with the most parts of the frame's module path (else its filename). Production's
   layout differs from the repository's (`/app/shop/cart.py`, an installed package), so a
   suffix is all that can be asked; two files alike are no answer.
2. agentloop picks the test's file: `<first test dir>/test_sentry_<slug>.py`, the slug
   from the group's most frequent issue's short id (`SHOP-1A` → `shop_1a`), with a
   numeric suffix when that file exists already (`test_sentry_shop_1a_2.py`). A session
   writes the test there. Its prompt (prompts/reproduce.md) names that path and carries
   the event scrubbed (heal/scrub.py) and fenced as data (loop.prompt.fence), with the
   signature and the located file fenced too: every word of an event is the sender's. Its
   limits are the configured ones (allowed tools, turns, budget: nothing in an event
   reaches them), its wall clock cut to the deadline, its environment without secrets
   (agents.secrets: no Sentry or GitHub token). It may write that one file and nothing
   else: the owned glob is exactly its path, held by `sandbox.build_policy(owned=...)` and
   `build.ownership.guard` as a build stream's are, so an edit elsewhere is refused when
   it is tried. (One rule, whatever the size of the test suite: a glob over the test
   folders with one exception per existing file made thousands of rules in a large
   project's session settings.)
3. After the session (loop.attempt.Attempt: git's state checked, the worktree put back on
   every exit): the diff from the start (git.snapshot_tree, by content) must be exactly
   that file, added, on no forbidden path. Anything else is skipped, naming the paths.
4. The test runs `runs` times (3), each in a fresh pytest process (suites.run_suite with
   the suite's re-run prefix and the file), in the judge's checkout (loop.judge) holding
   exactly the base commit plus that file: nothing else the agent left behind (a
   conftest, a .pth, bytecode) is there. A run reproduces when the test fails with the
   signature's exception type at its frame: the deepest frame in the project's own
   non-test code (failures.classify.crash_location) is the located file, and its line lies
   in a scope Python names as the signature's function (`scopes_at`). The first run that
   does not reproduce ends it: passes, another exception, another frame, or, after runs
   that did, flaky.
"""

from __future__ import annotations

import ast
import json
import os
import posixpath
import re
import shlex
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from string import Template
from typing import Literal

from agentloop import git
from agentloop import suites as suites_mod
from agentloop.agents import sandbox, secrets
from agentloop.agents.base import Agent, SessionLimits, SessionResult
from agentloop.build.ownership import Owned, Ownership
from agentloop.build.ownership import guard as ownership_guard
from agentloop.config import Config
from agentloop.errors import ReportError, SuiteError
from agentloop.failures.classify import crash_location
from agentloop.failures.model import ParsedReport
from agentloop.heal.scrub import scrub_event, scrub_text
from agentloop.heal.triage import Group, Signature, Skipped
from agentloop.integrations.sentry import Frame, SentryEvent
from agentloop.loop.attempt import Attempt, Rejected
from agentloop.loop.judge import Judge
from agentloop.loop.prompt import fence
from agentloop.rails.guard import make_guard
from agentloop.rails.paths import DEFAULT_SECRETS, ForbiddenPaths
from agentloop.suites import Suite
from agentloop.workspace import Workspace

RUNS = 3
BRANCH_PREFIX = f"{git.BRANCH_PREFIX}heal-"
# The folders a new test may go in when the project has none yet: where pytest looks.
DEFAULT_TEST_DIRS = ("tests",)
_TEST_DIR_NAMES = frozenset({"tests", "test"})
# The owner's name in build.ownership's refusals ("stream reproduce owns tests/**; …").
_OWNER = "reproduce"
# Sessions that did not finish what they were asked (as a build's stream: execute.py).
_UNFINISHED = frozenset({"api_error", "error", "crashed", "timeout", "max_turns", "budget"})
_MAX_CRUMBS = 20
_MAX_FRAMES = 30
_MAX_OUTPUT = 4000

Verdict = Literal["reproduced", "passed", "other_exception", "other_frame", "not_run"]
SkipKind = Literal[
    "no_runner",  # no pytest suite agentloop drives
    "no_crash_file",  # the crash frame is in no file of the repository
    "session_failed",
    "git_state",  # the session moved git's state (put back)
    "no_test",  # no file written, or no test in it
    "touched",  # changed something other than one new test file
    "passes",
    "other_exception",
    "other_frame",
    "flaky",  # reproduced, then did not
    "out_of_time",
]


@dataclass(frozen=True)
class ReproduceSettings:
    # The configured session limits; only the wall clock is cut (to the deadline).
    limits: SessionLimits = field(default_factory=SessionLimits)
    forbidden: ForbiddenPaths = field(default_factory=ForbiddenPaths)
    secrets: tuple[str, ...] = DEFAULT_SECRETS
    network: tuple[str, ...] = ()
    sandboxed: bool = True
    runs: int = RUNS
    # One run of the new test at most (the deadline cuts it shorter).
    test_timeout: float = 120.0
    # Project-relative folders tests live in, the first one gets the new test; () → the
    # project's own test folders (`tests/`, `test/` holding tracked files), else
    # DEFAULT_TEST_DIRS.
    test_dirs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Run:
    """One run of the new test on the base commit: the evidence."""

    number: int
    verdict: Verdict
    test_id: str | None = None
    exception: str | None = None
    crash: str | None = None  # "shop/cart.py:8", top-relative
    functions: tuple[str, ...] = ()  # the scopes at that line, innermost first
    message: str = ""  # scrubbed, one line
    output: str = ""  # the failure as pytest printed it, scrubbed, trimmed
    duration_s: float = 0.0

    def __str__(self) -> str:
        if self.verdict == "passed":
            return f"run {self.number}: passed"
        if self.verdict == "not_run":
            return f"run {self.number}: {self.message}"
        where = f" at {self.crash}" if self.crash else ""
        scope = f" in {self.functions[0]}" if self.functions else ""
        return f"run {self.number}: {self.exception}{where}{scope}"


@dataclass(frozen=True)
class Reproduction:
    """A test that fails on the base commit as production did, every run: FIX's target."""

    group: Group
    crash_file: str  # top-relative
    test_file: str  # top-relative
    test_id: str  # pytest's node id, from the suite's directory
    test_source: str
    base_sha: str
    runs: tuple[Run, ...]
    cost_usd: float

    @property
    def signature(self) -> Signature:
        return self.group.signature


@dataclass(frozen=True)
class NotReproduced:
    group: Group
    kind: SkipKind
    reason: str
    test_file: str | None = None
    test_source: str | None = None
    runs: tuple[Run, ...] = ()
    cost_usd: float = 0.0

    @property
    def signature(self) -> Signature:
        return self.group.signature

    def skipped(self) -> Skipped:
        """As triage's record of a skipped group, for the incident report."""
        return Skipped(self.group.incidents, f"not reproduced: {self.reason}", self.group)


Outcome = Reproduction | NotReproduced


# -- where the crash is ----------------------------------------------------------------------


def _frame_paths(frame: Frame) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    if frame.module:
        parts = tuple(frame.module.split("."))
        found += [(*parts[:-1], parts[-1] + ".py"), (*parts, "__init__.py")]
    for path in (frame.filename, frame.abs_path):
        if path:
            found.append(tuple(p for p in path.replace("\\", "/").split("/") if p))
    return found


def _common_tail(a: Sequence[str], b: Sequence[str]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[-1 - n] == b[-1 - n]:
        n += 1
    return n


def locate(frame: Frame, files: Iterable[str]) -> str | None:
    """The tracked file (top-relative) the crash frame is in: the one ending with the most
    parts of the frame's module path, filename or absolute path (at least its name). None
    when none matches, or two match equally well."""
    wanted = _frame_paths(frame)
    best: str | None = None
    score, tie = 0, False
    for path in files:
        if not path.endswith(".py"):
            continue
        parts = path.split("/")
        n = max((_common_tail(parts, w) for w in wanted), default=0)
        if n > score:
            best, score, tie = path, n, False
        elif n == score and n > 0:
            tie = True
    return None if tie else best


_COMPREHENSIONS: Mapping[type[ast.AST], str] = {
    ast.GeneratorExp: "<genexpr>",
    ast.ListComp: "<listcomp>",
    ast.SetComp: "<setcomp>",
    ast.DictComp: "<dictcomp>",
}


def _scope(node: ast.AST) -> tuple[str, bool] | None:
    """(the name Python gives the code object, whether it is a function) of a node that
    makes one."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return node.name, True
    if isinstance(node, ast.Lambda):
        return "<lambda>", True
    if isinstance(node, ast.ClassDef):
        return node.name, False
    name = _COMPREHENSIONS.get(type(node))
    return (name, False) if name else None


def scopes_at(source: str, line: int) -> tuple[str, ...]:
    """The names of the code objects whose code is on `line`, innermost first, each up
    to its nearest function ("<module>" when there is none): for `return sum(x["qty"] for
    x in items)` in `total`, ("<genexpr>", "total"). A traceback names a line, not a
    column, and a line can hold several scopes; list comprehensions are their function's
    own code since Python 3.12. () when the source does not parse."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return ()
    chains: list[list[tuple[str, bool]]] = []

    def visit(node: ast.AST, chain: list[tuple[str, bool]]) -> None:
        for child in ast.iter_child_nodes(node):
            start = getattr(child, "lineno", None)
            end = getattr(child, "end_lineno", None)
            if isinstance(start, int) and isinstance(end, int) and not start <= line <= end:
                continue
            scope = _scope(child)
            if scope is not None:
                chains.append([*chain, scope])
                visit(child, [*chain, scope])
            else:
                visit(child, chain)

    visit(tree, [])
    names: list[str] = []
    for chain in sorted(chains, key=len, reverse=True):
        for name, is_function in reversed(chain):
            names.append(name)
            if is_function:
                break
        else:
            names.append("<module>")
    return tuple(dict.fromkeys(names)) or ("<module>",)


def _short(exception: str) -> str:
    # Sentry names a class, pytest may qualify it (`shop.errors.OutOfStock`).
    return exception.rsplit(".", 1)[-1]


# -- the prompt ----------------------------------------------------------------------------


def _event_text(group: Group, event: SentryEvent | None) -> str:
    lines = [
        "issues: "
        + ", ".join(
            f"{i.issue.short_id} ({i.issue.last_day} events in 24 h)" for i in group.incidents
        )
    ]
    if event is None:
        title = scrub_text(group.incidents[0].issue.title)
        return "\n".join([*lines, f"title: {title}", "(Sentry kept no event)"])
    lines.append(f"level: {event.level}")
    if not event.exceptions:  # else the title is the exception's type and value again
        lines.append(f"title: {event.title}")
    for exc in event.exceptions:
        handled = {True: "handled", False: "unhandled", None: "handled: unknown"}[exc.handled]
        lines += ["", f"exception {exc.type} ({handled}): {exc.value}"]
        lines.append("stack, oldest call first, the crash last (* = the application's code):")
        frames = exc.frames[-_MAX_FRAMES:]
        if len(frames) < len(exc.frames):
            lines.append(f"  ... {len(exc.frames) - len(frames)} outer frames left out")
        for f in frames:
            where = f.filename or f.abs_path or f.module or "?"
            mark = "*" if f.in_app else " "
            lines.append(f" {mark} {where}:{f.lineno or '?'} in {f.function or '?'}")
            if f.context_line:
                lines.append(f"        {f.context_line.strip()}")
    request = event.request
    if request is not None:
        lines += ["", f"request: {request.method or '?'} {request.url or '?'}"]
        if request.query:
            lines.append(f"  query: {request.query}")
        lines += [f"  header {name}: {value}" for name, value in request.headers]
        if request.data is not None:
            body = request.data if isinstance(request.data, str) else json.dumps(request.data)
            lines.append(f"  body: {body}")
    crumbs = event.breadcrumbs[-_MAX_CRUMBS:]
    if crumbs:
        lines += ["", "breadcrumbs, oldest first:"]
        for c in crumbs:
            data = f" {json.dumps(dict(c.data), default=str)}" if c.data else ""
            head = " ".join(p for p in (c.timestamp, c.category, c.level) if p)
            lines.append(f"  [{head}] {c.message or ''}{data}")
    if event.tags:
        lines += ["", "tags: " + ", ".join(f"{k}={v}" for k, v in event.tags)]
    return "\n".join(lines)


def build_prompt(
    group: Group,
    *,
    crash_file: str,
    test_file: str,
    command: str,
    rails: Sequence[str],
    runs: int = RUNS,
) -> str:
    """The session's prompt for `group`: its most frequent issue's event, scrubbed and
    fenced; the signature and the located file fenced as well (the event named them)."""
    incident = group.incidents[0]
    event = scrub_event(incident.event) if incident.event is not None else None
    sig = group.signature
    frame = group.crash_frame
    target = (
        f"exception type: {scrub_text(sig.exception)}\n"
        f"crash frame: function {scrub_text(sig.function)} in {scrub_text(sig.where)}"
        f" (line {frame.lineno or '?'} in production)\n"
        f"that is this repository's file: {crash_file}"
    )
    text = resources.files("agentloop.heal").joinpath("prompts/reproduce.md").read_text("utf-8")
    return Template(text).substitute(
        target=fence(target, "The crash (from the event)"),
        event=fence(_event_text(group, event), "The Sentry event (scrubbed)"),
        test_file=f"`{test_file}`",
        command=fence(command, "command"),
        rails="\n".join(f"- {rule}" for rule in rails),
        runs=runs,
    )


# -- the diff ------------------------------------------------------------------------------


def test_dirs(listed: Iterable[str], project: str) -> tuple[str, ...]:
    """The project's test folders (top-relative): the outermost `tests/` or `test/` of
    each tracked file under the project, else DEFAULT_TEST_DIRS in the project."""
    prefix = "" if project in ("", ".") else project.rstrip("/") + "/"
    found: list[str] = []
    for path in listed:
        if not path.startswith(prefix):
            continue
        parts = path[len(prefix) :].split("/")[:-1]
        for n, part in enumerate(parts):
            if part in _TEST_DIR_NAMES:
                found.append(prefix + "/".join(parts[: n + 1]))
                break
    return tuple(sorted(set(found))) or tuple(prefix + d for d in DEFAULT_TEST_DIRS)


def literal_glob(path: str) -> str:
    """A path as a gitignore pattern matching exactly it."""
    escaped = "".join("\\" + c if c in "*?[]\\" else c for c in path)
    return "\\" + escaped if escaped[:1] in ("!", "#") else escaped


def slug(short_id: str) -> str:
    """A Sentry short id as a piece of a Python module name: `SHOP-1A` → `shop_1a`."""
    return re.sub(r"[^a-z0-9]", "_", short_id.lower()).strip("_") or "issue"


def test_file_for(group: Group, dirs: Sequence[str], exists: Callable[[str], bool]) -> str:
    """Where the group's test goes (top-relative): `<dirs[0]>/test_sentry_<slug>.py`, with
    `_2`, `_3`… before `.py` while `exists` says that file is there already."""
    stem = posixpath.join(dirs[0], f"test_sentry_{slug(group.incidents[0].issue.short_id)}")
    path, n = f"{stem}.py", 1
    while exists(path):
        n += 1
        path = f"{stem}_{n}.py"
    return path


def owned_globs(test_file: str) -> tuple[str, ...]:
    """What the session may write: that one file, as a literal pattern. The sandbox then
    holds every existing file and folder beside it (`sandbox.unowned`), the guard and the
    diff check any new one."""
    return (literal_glob(test_file),)


def _why_not(changed: Sequence[str], added: Sequence[str], test_file: str) -> list[str]:
    """Each changed path that is not the one new test file asked for, with why."""
    problems = [
        f"{p} (existed)" if p not in added else f"{p} (not {test_file})"
        for p in changed
        if p != test_file
    ]
    if test_file in changed and test_file not in added:
        problems.insert(0, f"{test_file} (existed)")
    if not problems and test_file not in changed:
        problems = [f"{test_file} was not written"]
    return problems


# -- the step ------------------------------------------------------------------------------


def creating_tools(allowed: tuple[str, ...]) -> tuple[str, ...]:
    """The configured tools, plus Write when Edit is among them. The session's one job is to
    create a file, and `agent.allowed_tools`' default leaves Write out: a model that reaches
    for Write (as models do for a new file) is told it does not exist and may give up. Edit
    already creates files (an empty old_string), so Write grants nothing new, and the
    session's edit rules and guard still let it write only the test file."""
    names = SessionLimits(allowed_tools=allowed).tool_names
    if "Edit" in names and "Write" not in names:
        return (*allowed, "Write")
    return allowed


class Reproducer:
    """REPRODUCE in a workspace (never the user's checkout): `reproduce` takes the groups
    in order and leaves the worktree as it found it."""

    def __init__(
        self,
        ws: Workspace,
        *,
        agent: Agent,
        suites: Sequence[Suite],
        settings: ReproduceSettings | None = None,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        progress: Callable[[str], None] = lambda _message: None,
    ) -> None:
        self.ws, self.agent = ws, agent
        self.settings = settings or ReproduceSettings()
        self.environ = dict(os.environ if environ is None else environ)
        self.clock, self.progress = clock, progress
        # The suites are discovered in ws.root; the one that can run a single test file.
        self.suite = next((s for s in suites if s.runner == "pytest" and s.rerun), None)
        self.top = ws.path
        self.project = ws.root.relative_to(ws.path).as_posix()
        self._judge = Judge(
            top=self.top,
            project="" if self.project == "." else self.project,
            open_worktree=lambda: ws.detached_worktree("reproduce"),
            env_for=lambda root: ws.env(root=root),
            timeout=self.settings.test_timeout,
        )
        self._sessions = 0

    def reproduce(self, groups: Sequence[Group], *, deadline: float) -> tuple[Outcome, ...]:
        """One outcome per group, in order. `deadline` is on `clock`: no session starts
        and no run is made past it; the groups not reached are skipped as out of time."""
        found: list[Outcome] = []
        for group in groups:
            if self.clock() >= deadline:
                found.append(NotReproduced(group, "out_of_time", "out of time before this group"))
                continue
            self.progress(f"reproducing {group.signature}")
            outcome = self._group(group, deadline)
            self.progress(
                f"{group.signature}: "
                + ("reproduced" if isinstance(outcome, Reproduction) else outcome.reason)
            )
            found.append(outcome)
        return tuple(found)

    def _group(self, group: Group, deadline: float) -> Outcome:
        if self.suite is None:
            return NotReproduced(group, "no_runner", "no pytest suite agentloop can drive here")
        listed = git.listed_paths(self.top)
        crash_file = locate(group.crash_frame, listed)
        if crash_file is None:
            return NotReproduced(
                group,
                "no_crash_file",
                f"the crash frame {group.signature.where}:{group.signature.function} is in "
                "no file of this repository (or in several alike)",
            )
        project = "" if self.project == "." else self.project
        dirs = (
            tuple(posixpath.join(project, d) for d in self.settings.test_dirs)
            if self.settings.test_dirs
            else test_dirs(listed, project)
        )
        # Nor one untracked in the user's checkout, where the fix's branch is checked out.
        test_file = test_file_for(
            group,
            dirs,
            lambda p: p in listed or (self.top / p).exists() or (self.ws.repo / p).exists(),
        )
        owned = Owned(_OWNER, owned_globs(test_file))
        left = deadline - self.clock()
        if left < 1:
            return NotReproduced(group, "out_of_time", "out of time before the session")
        configured = self.settings.limits
        limits = replace(configured, timeout_s=min(configured.timeout_s or left, left),
                         allowed_tools=creating_tools(configured.allowed_tools))  # fmt: skip
        s = self.settings
        policy = sandbox.build_policy(
            top=self.top,
            repo=self.ws.repo,
            forbidden=s.forbidden,
            secrets=s.secrets,
            network=s.network,
            sandboxed=s.sandboxed,
            owned=owned.globs,
        )
        rails = make_guard(replace(s.forbidden, root=str(self.top)), secrets=s.secrets)
        guard = ownership_guard(rails, Ownership((owned,)), _OWNER, str(self.top))
        target = posixpath.relpath(test_file, project or ".")
        prompt = build_prompt(
            group,
            crash_file=crash_file,
            test_file=test_file,
            command=f"{self.suite.rerun} {shlex.quote(target)}"
            if project == ""
            else f"cd {shlex.quote(project)} && {self.suite.rerun} {shlex.quote(target)}",
            rails=[
                "Never create, edit, move or delete files matching: "
                + ", ".join(s.forbidden.patterns),
                f"Write only {test_file}; changes to any other path are refused.",
            ],
            runs=s.runs,
        )
        self._sessions += 1
        rescue = self.ws.places.rescued / f"{self.ws.run_id}-reproduce-{self._sessions}"
        env = secrets.agent_env(self.environ, self.ws.env(root=self.ws.root))
        with Attempt(self.top, rescue, sandboxed=policy.sandboxed) as attempt:
            result = self.agent.run(
                prompt, cwd=self.ws.root, limits=limits, env=env, policy=policy, guard=guard
            )
            # The worktree is put back as the attempt began, whatever happens next: the
            # test's text travels in the record.
            return self._judged(group, attempt, result, crash_file, test_file, deadline)

    def _judged(
        self,
        group: Group,
        attempt: Attempt,
        result: SessionResult,
        crash_file: str,
        test_file: str,
        deadline: float,
    ) -> Outcome:
        cost = result.cost_usd
        try:
            attempt.check_git_state()
        except Rejected as rejected:
            return NotReproduced(group, "git_state", rejected.reason, cost_usd=cost)
        if result.outcome in _UNFINISHED:
            why = f"the session ended with {result.outcome}"
            return NotReproduced(group, "session_failed", why, cost_usd=cost)
        candidate = git.snapshot_tree(self.top, attempt.start)
        if not candidate.changed:
            return NotReproduced(group, "no_test", "the session wrote no test", cost_usd=cost)
        added = [p for p in candidate.changed if git.show_file(self.top, attempt.start, p) is None]
        problems = _why_not(candidate.changed, added, test_file)
        if not problems:
            try:
                attempt.check_rails(candidate, forbidden=self.settings.forbidden,
                                    allow_test_edits=False)  # fmt: skip
            except Rejected as rejected:
                problems = [rejected.reason]
        if problems:
            return NotReproduced(
                group,
                "touched",
                f"may only add {test_file}: " + "; ".join(problems[:5]),
                cost_usd=cost,
            )
        source = (self.top / test_file).read_text("utf-8", errors="replace")
        runs = self._runs(candidate.tree, attempt.keep, test_file, group.signature, crash_file,
                          deadline)  # fmt: skip
        return _decide(group, runs, self.settings.runs, test_file, source, crash_file,
                       attempt.start, cost)  # fmt: skip

    def _runs(
        self,
        tree: str,
        keep: Sequence[str],
        test_file: str,
        sig: Signature,
        crash_file: str,
        deadline: float,
    ) -> list[Run]:
        assert self.suite is not None
        checkout = self._judge.checkout(tree, keep)
        root = checkout / self.project
        cwd = root / self.suite.cwd.relative_to(self.ws.root)
        target = os.path.relpath(checkout / test_file, cwd)
        # The test is the agent's code, written under the influence of text anyone can send
        # to Sentry: it runs without the secrets of the environment (the Sentry and GitHub
        # tokens among them), as the agent's own commands do.
        env = secrets.agent_env(self.environ, self.ws.env(root=root))
        runs: list[Run] = []
        with tempfile.TemporaryDirectory(prefix="agentloop-reproduce-") as workdir:
            # No bytecode is read from or written into the checkout.
            env["PYTHONPYCACHEPREFIX"] = os.path.join(workdir, "pycache")
            for number in range(1, self.settings.runs + 1):
                left = deadline - self.clock()
                if left <= 0:
                    break
                suite = replace(
                    self.suite,
                    run=f"{self.suite.rerun} {shlex.quote(target)}",
                    cwd=cwd,
                    timeout=min(self.settings.test_timeout, left),
                )
                started = self.clock()
                try:
                    _, report = suites_mod.run_suite(suite, Path(workdir), root, env=env)
                except (SuiteError, ReportError) as exc:
                    run = Run(number, "not_run", message=scrub_text(exc.message))
                else:
                    run = _judge_run(number, report, cwd=cwd, checkout=checkout, sig=sig,
                                     crash_file=crash_file)  # fmt: skip
                runs.append(replace(run, duration_s=self.clock() - started))
                if run.verdict != "reproduced":
                    break
        return runs


def _judge_run(
    number: int,
    report: ParsedReport,
    *,
    cwd: Path,
    checkout: Path,
    sig: Signature,
    crash_file: str,
) -> Run:
    if report.total > 1:
        return Run(number, "not_run", message=f"the file holds {report.total} tests, not one")
    if not report.failures:
        if report.total == 0:
            return Run(number, "not_run", message="pytest collected no test in the file")
        return Run(number, "passed")
    failure = report.failures[0]
    location = crash_location(failure, root=str(cwd))
    crash: str | None = None
    functions: tuple[str, ...] = ()
    if location is not None:
        full = Path(os.path.normpath(cwd / location.file))
        if full.is_relative_to(checkout):
            crash = full.relative_to(checkout).as_posix()
            if location.line is not None and full.is_file():
                source = full.read_text("utf-8", errors="replace")
                functions = scopes_at(source, location.line)
    message = scrub_text(failure.message.strip().splitlines()[0] if failure.message.strip() else "")
    output = scrub_text(failure.text)
    if len(output) > _MAX_OUTPUT:
        output = "... (trimmed) ...\n" + output[-_MAX_OUTPUT:]
    where = f"{crash}:{location.line}" if crash and location and location.line else crash
    if _short(failure.error_type) != _short(sig.exception):
        verdict: Verdict = "other_exception"
    elif crash != crash_file or sig.function not in functions:
        verdict = "other_frame"
    else:
        verdict = "reproduced"
    return Run(number, verdict, failure.test_id, failure.error_type, where, functions, message,
               output)  # fmt: skip


def _decide(
    group: Group,
    runs: Sequence[Run],
    wanted: int,
    test_file: str,
    source: str,
    crash_file: str,
    base_sha: str,
    cost: float,
) -> Outcome:
    good = [r for r in runs if r.verdict == "reproduced"]
    if len(good) == wanted:
        return Reproduction(group, crash_file, test_file, str(good[0].test_id), source, base_sha,
                            tuple(runs), cost)  # fmt: skip

    def skip(kind: SkipKind, reason: str) -> NotReproduced:
        return NotReproduced(group, kind, reason, test_file, source, tuple(runs), cost)

    sig = group.signature
    if not runs:
        return skip("out_of_time", "out of time before the test could run")
    last = runs[-1]
    if last.verdict == "reproduced":
        return skip("out_of_time", f"out of time after {len(good)} of {wanted} runs")
    if good:
        return skip("flaky", f"flaky: reproduced in {len(good)} of {wanted} runs, then {last}")
    if last.verdict == "passed":
        return skip("passes", "the test passes on the base commit")
    if last.verdict == "other_exception":
        return skip(
            "other_exception",
            f"the test fails with {last.exception}, not {sig.exception} ({last.message})",
        )
    if last.verdict == "other_frame":
        scope = f" in {last.functions[0]}" if last.functions else ""
        return skip(
            "other_frame",
            f"the test fails with {last.exception} at {last.crash or 'an unknown place'}{scope}, "
            f"not at {crash_file} in {sig.function}",
        )
    return skip("no_test", last.message)  # no test, two tests, or pytest could not run


def reproduce(
    repo: Path,
    groups: Sequence[Group],
    *,
    agent: Agent,
    config: Config,
    deadline: float,
    settings: ReproduceSettings | None = None,
    environ: Mapping[str, str] | None = None,
    clock: Callable[[], float] = time.monotonic,
    progress: Callable[[str], None] = lambda _message: None,
) -> tuple[Outcome, ...]:
    """REPRODUCE for `groups` in a workspace of its own (a worktree on an
    `agentloop/heal-<run>` branch from HEAD, `workspace.setup` run there), removed at the
    end with its branch: the user's checkout is never written."""
    settings = settings or ReproduceSettings()
    with Workspace.open(
        repo,
        setup=config.workspace.setup,
        setup_timeout=config.workspace.setup_timeout,
        secrets=settings.secrets,
        branch_prefix=BRANCH_PREFIX,
    ) as ws:
        found = suites_mod.discover(ws.root, config)
        step = Reproducer(ws, agent=agent, suites=found, settings=settings, environ=environ,
                          clock=clock, progress=progress)  # fmt: skip
        return step.reproduce(groups, deadline=deadline)
