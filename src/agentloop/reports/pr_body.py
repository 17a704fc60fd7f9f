"""The pull request of a run: its title and its Markdown body, the evidence a reviewer
needs, from the run's document alone (`run.json`), so a PR can be opened from an artifact
in another job.

Everything that came from a test run or an agent (test ids, reasons, messages, diffs,
paths) is shown as code: in a fenced block whose fence is longer than any run of
backticks inside it, or in a code span sized the same way, so none of it renders as
Markdown, HTML, a mention or a link. GitHub refuses a body over 65,536 characters: the
largest blocks are cut first, each cut is said where it happens and at the top, and the
footer with the dedupe markers always survives.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from agentloop import __version__
from agentloop.rails.testinfra import is_test_surface
from agentloop.reports.run_doc import RunDoc, TaskDoc

BODY_LIMIT = 65536
TITLE_MAX = 72
LABEL = "auto-fix"
FILES_SHOWN = 30

_MARKER = re.compile(r"<!-- agentloop:fingerprint ([^\s>]+) -->")
_TRAILER = re.compile(r"^Agentloop-Fingerprint:[ \t]*(\S+)[ \t]*$", re.MULTILINE)
# A fenced block's opening or closing line (CommonMark: up to 3 spaces, then 3 or more
# backticks or tildes).
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def marker(fingerprint: str) -> str:
    return f"<!-- agentloop:fingerprint {fingerprint} -->"


def unfenced_lines(body: str) -> Iterator[str]:
    """The lines of a Markdown body outside every fenced block: where a dedupe marker
    counts. Test output or an event quoted in a body (fenced) may carry marker text."""
    fence = ""
    for line in (body or "").splitlines():
        opens = _FENCE.match(line)
        if fence:
            # Closed only by the same character, at least as many, and nothing after.
            closes = opens and opens.group(1)[0] == fence[0] and len(opens.group(1)) >= len(fence)
            if closes and not line.strip().lstrip(fence[0]):
                fence = ""
            continue
        if opens:
            fence = opens.group(1)
            continue
        yield line


def body_fingerprints(body: str) -> frozenset[str]:
    """The fingerprints a PR body's dedupe markers name: a marker is a line of its own,
    outside every fenced block. Read inside one, it would make agentloop comment on this PR
    for failures it does not fix instead of opening the PR that does."""
    found = (_MARKER.fullmatch(line) for line in unfenced_lines(body))
    return frozenset(m.group(1) for m in found if m)


def trailer_fingerprints(message: str) -> frozenset[str]:
    """The fingerprints a commit message's `Agentloop-Fingerprint:` trailers name."""
    return frozenset(_TRAILER.findall(message or ""))


@dataclass(frozen=True)
class Reviewers:
    """Who is asked to review, and why: `source` is "config" (github.reviewers and
    --reviewer) or "CODEOWNERS"; empty when nobody is."""

    users: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()
    source: str = ""

    def __bool__(self) -> bool:
        return bool(self.users or self.teams)


# ---------------------------------------------------------------- safe Markdown


def _clean(text: str) -> str:
    return _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def fence(text: str, lang: str = "text") -> str:
    """`text` in a fenced code block nothing inside can close."""
    text = _clean(text).rstrip("\n")
    runs = re.findall(r"`+", text)
    ticks = "`" * max(3, max((len(r) for r in runs), default=0) + 1)
    return f"{ticks}{lang}\n{text}\n{ticks}"


def code(text: str) -> str:
    """`text` on one line as an inline code span nothing inside can close."""
    text = " ".join(_clean(text).split())
    if not text:
        return "(none)"
    runs = re.findall(r"`+", text)
    ticks = "`" * (max((len(r) for r in runs), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


@dataclass
class Block:
    """A fenced block that may be cut to fit the body's limit."""

    text: str
    lang: str = "text"
    keep: int | None = None  # characters kept after cutting; None: whole
    source: str = "the run's run.json"  # where the whole text is, for the cut's note

    def render(self) -> str:
        if self.keep is None or self.keep >= len(self.text):
            return fence(self.text, self.lang)
        shown = self.text[: self.keep]
        # Cut at a line end when one is near, so a diff line is never half shown.
        newline = shown.rfind("\n")
        if newline > self.keep * 0.8:
            shown = shown[:newline]
        note = (
            f"\n\n_Cut to fit GitHub's size limit: {len(shown):,} of {len(self.text):,} "
            f"characters shown; the whole text is in {self.source}._"
        )
        return (fence(shown, self.lang) if shown else "_(left out to fit GitHub's limit)_") + note


Part = str | Block


@dataclass
class Doc:
    parts: list[Part] = field(default_factory=list)
    source: str = "the run's run.json"  # where a cut block's whole text is

    def add(self, *parts: Part) -> None:
        self.parts.extend(parts)

    def block(self, text: str, lang: str = "text") -> None:
        self.parts.append(Block(text, lang, source=self.source))


def _render(parts: Sequence[Part]) -> str:
    return "\n".join(p if isinstance(p, str) else p.render() for p in parts)


def fit(parts: list[Part], footer: str, limit: int, *, source: str = "run.json") -> str:
    """The parts and the footer in at most `limit` characters: blocks are cut to one cap,
    the largest first (every block longer than the cap is cut to it), the cap as high as
    the limit allows; failing that, the last parts go."""
    full = _render(parts) + "\n" + footer
    if len(full) <= limit:
        return full
    notice = (
        "> [!NOTE]\n> This description was shortened to fit GitHub's limit of "
        f"{limit:,} characters: the largest blocks below were cut (each says so).\n"
    )
    budget = limit - len(footer) - len(notice) - 1
    blocks = [p for p in parts if isinstance(p, Block)]
    low, high = 0, max((len(b.text) for b in blocks), default=0)
    # Binary search for the highest cap that fits (a cut block gains a note, so the
    # length is measured, not computed).
    while low < high:
        cap = (low + high + 1) // 2
        for b in blocks:
            b.keep = cap if len(b.text) > cap else None
        if len(_render(parts)) <= budget:
            low = cap
        else:
            high = cap - 1
    for b in blocks:
        b.keep = low if len(b.text) > low else None
    kept: list[Part] = list(parts)
    if len(_render(kept)) > budget:
        # Too long with every block at the lowest cap: the text around them is. The last
        # parts go, whole (a block cut in two would leave its fence open).
        while kept and len(_render(kept)) > budget - 80:
            kept.pop()
        kept.append(f"\n_(The rest was left out to fit GitHub's limit; see {source}.)_")
    return notice + _render(kept) + "\n" + footer


# ---------------------------------------------------------------- title


def _words(category: str) -> str:
    return category.replace("_", " ") or "failure"


def _file_of(task: TaskDoc) -> str:
    if task.crash_location:
        return re.sub(r":\d+$", "", task.crash_location)
    return task.files[0] if task.files else task.id


def short(text: str, width: int) -> str:
    text = " ".join(_clean(text).split())
    return text if len(text) <= width else text[: width - 3].rstrip() + "..."


def _areas(tasks: Sequence[TaskDoc]) -> list[str]:
    """Where the fixes are: the code files they changed (a reviewer looks there first),
    else the folders of the failures' crash sites."""
    changed = [p for t in tasks for p in t.files if not is_test_surface(p)]
    if changed:
        return list(dict.fromkeys(changed))
    paths = [_file_of(t) for t in tasks]
    return list(dict.fromkeys(p.rsplit("/", 1)[0] if "/" in p else p for p in paths))


def title(run: RunDoc, *, subjects: Mapping[str, str] | None = None) -> str:
    """`fix: <summary>`, at most 72 characters. One fixed task: what its commit's subject
    names (`add() in calc/ops.py`) or its file, and its category; several: how many tests
    now pass and where. `subjects` maps fix commits to their subject lines, when known."""
    fixed = run.fixed
    if len(fixed) == 1:
        (task,) = fixed
        subject = (subjects or {}).get(task.commit or "", "")
        what = subject.removeprefix("fix ").strip() if subject.startswith("fix ") else ""
        what = what or _file_of(task)
        tail = f" ({_words(task.category)})"
        return "fix: " + short(what, TITLE_MAX - len("fix: ") - len(tail)) + tail
    tests = len({test for t in fixed for test in t.tests})
    head = f"fix: {tests} failing test{'' if tests == 1 else 's'} in "
    areas = _areas(fixed)
    room = TITLE_MAX - len(head)
    for shown in range(len(areas), 0, -1):
        rest = len(areas) - shown
        where = ", ".join(areas[:shown]) + (f" and {rest} more" if rest else "")
        if len(where) <= room:
            return head + where
    return head + short(areas[0], room)


# ---------------------------------------------------------------- body

_TIERS = {
    "task": "caught by the task's own tests",
    "importers": "caught by the tests of code importing the change",
}


def _money(value: float) -> str:
    return f"${value:.2f}"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"


def _tests_block(task: TaskDoc) -> str:
    """Each test with the command that runs it alone (its selector), when known."""
    by_test: dict[str, list[str]] = {}
    for s in task.selectors:
        if s.selector:
            by_test.setdefault(s.test, []).append(s.selector)
    lines = []
    for test in task.tests:
        lines.append(test)
        lines += [f"    $ {selector}" for selector in by_test.get(test, [])]
    return "\n".join(lines)


def _delta(doc: Doc, run: RunDoc) -> None:
    doc.add("## The full suites against the baseline", "")
    if run.baseline_failing is None or run.final_failing is None:
        doc.add("_This run did not record which tests failed before and after it._", "")
        return
    before, after = set(run.baseline_failing), set(run.final_failing)
    green = sorted(before - after)
    still = sorted(before & after)
    new = sorted(after - before)
    doc.add(
        f"Red on base: **{len(before)}**. Red after the fixes: **{len(after)}**. "
        f"Now green: **{len(green)}**. New reds: **{len(new)}**.",
        "",
    )
    if new:
        doc.add(f"**Regressions: {len(new)} test(s) pass on base and fail here:**", "")
        doc.block("\n".join(new))
        doc.add("")
    else:
        doc.add("No regressions: every test that passed on base passes here.", "")
    if green:
        doc.add("Red on base, green here:", "")
        doc.block("\n".join(green))
        doc.add("")
    if still:
        doc.add(f"Red before, not blamed on this PR ({len(still)}): they failed on base too.", "")
        doc.block("\n".join(still))
        doc.add("")
    if run.regressions:
        doc.add(
            "Fixes reverted during the run because they broke these tests (not in this PR):", ""
        )
        doc.block("\n".join(run.regressions))
        doc.add("")


def _files(files: Sequence[str]) -> str:
    if not files:
        return "none recorded"
    shown = ", ".join(code(f) for f in files[:FILES_SHOWN])
    more = len(files) - FILES_SHOWN
    return shown + (f" and {more} more" if more > 0 else "")


def _fixed_task(doc: Doc, number: int, run: RunDoc, task: TaskDoc) -> None:
    where = code(task.crash_location) if task.crash_location else "an unknown place"
    doc.add(f"### {number}. Fixed: {_words(task.category)} at {where} (task {code(task.id)})", "")
    base = f"{code(run.base_sha)}" + (f" ({code(run.base_ref)})" if run.base_ref else "")
    doc.add(f"- **Base:** {base}")
    if task.commit:
        doc.add(f"- **Fix commit:** {code(task.commit)}")
    elif task.fixed_by:
        doc.add(f"- **Fixed by:** {code(task.fixed_by)}, the fix of another task in this PR")
    rejected = len(task.rejected)
    doc.add(
        f"- **Attempts:** {len(task.attempts)}"
        + (f" ({rejected} rejected, below)" if rejected else "")
        + f" · **cost** {_money(task.cost_usd)} · **duration** {_duration(task.duration_s)}"
    )
    doc.add(f"- **Files touched:** {_files(task.files)}")
    changed = sorted({p for a in task.attempts if a.outcome == "fixed" for p in a.tests_changed})
    if task.tests_diff.strip() or changed:
        doc.add(
            "- **Tests changed: YES.** This fix changed test files"
            + (f" ({_files(changed)})" if changed else "")
            + ". Read the diff below: a test changed so that it passes is not a fix.",
            "",
        )
        if task.tests_diff.strip():
            doc.block(task.tests_diff, "diff")
        doc.add("")
    else:
        doc.add("- **Tests changed:** no, the fix changed no test file.", "")
    at = code(task.commit[:12]) if task.commit else "the fix"
    doc.add(
        f"Tests that failed on base and pass at {at}, each with the command that runs it alone:",
        "",
    )
    doc.block(_tests_block(task))
    doc.add("")
    _rejected(doc, task)


def _rejected(doc: Doc, task: TaskDoc) -> None:
    if not task.rejected:
        return
    doc.add("Rejected attempts:", "")
    for a in task.rejected:
        tier = f", {_TIERS[a.tier]}" if a.tier in _TIERS else ""
        doc.add(f"**Attempt {a.number}:** {code(a.outcome)}{tier}", "")
        if a.reason.strip():
            doc.block(a.reason)
            doc.add("")


def _unfixed(doc: Doc, run: RunDoc) -> None:
    if not run.unfixed:
        return
    doc.add("## Not fixed", "")
    for task in run.unfixed:
        where = f" at {code(task.crash_location)}" if task.crash_location else ""
        doc.add(
            f"- Task {code(task.id)}: {_words(task.category)}{where}, {code(task.outcome)} "
            f"after {len(task.attempts)} attempt(s), {len(task.tests)} test(s). Why:",
            "",
        )
        doc.block(task.reason or "(no reason recorded)")
        doc.add("")
        _rejected(doc, task)


def footer(run: RunDoc) -> str:
    lines = [
        "---",
        f"Opened by agentloop {__version__}, run {run.run_id}. "
        "Never merged by agentloop: review and merge it yourself.",
        "",
        *(marker(fp) for fp in run.fingerprints),
    ]
    return "\n".join(lines) + "\n"


def _header(doc: Doc, run: RunDoc, reviewers: Reviewers | None) -> None:
    base = code(run.base_sha[:12]) + (f" on {code(run.base_ref)}" if run.base_ref else "")
    doc.add(
        f"agentloop fixed **{len(run.fixed)} of {len(run.tasks)}** failing task(s) found at "
        f"{base} (run {code(run.run_id)}: {_money(run.cost_usd)}, "
        f"{_duration(run.duration_s)}). Each fix was verified by the task's tests, the "
        "tests of the code importing it, and the full suites.",
        "",
    )
    if run.stopped_by:
        doc.add(f"The run stopped early: {code(run.stopped_by)} was reached.", "")
    if reviewers:
        # Names are not listed: the PR's author (the token's user, unknown until the PR
        # exists) is left out of the requests, and GitHub may refuse some; the PR's
        # sidebar shows who was asked.
        why = (
            "the owners of the touched files in CODEOWNERS"
            if reviewers.source == "CODEOWNERS"
            else "github.reviewers and --reviewer"
        )
        doc.add(f"Reviews are requested from {why}.", "")


def _sections(doc: Doc, run: RunDoc) -> None:
    doc.add("## Fixed", "")
    for number, task in enumerate(run.fixed, start=1):
        _fixed_task(doc, number, run, task)
    _delta(doc, run)
    _unfixed(doc, run)


def body(run: RunDoc, *, reviewers: Reviewers | None = None, limit: int = BODY_LIMIT) -> str:
    """The PR's Markdown body: at most `limit` characters, the dedupe markers last."""
    doc = Doc()
    _header(doc, run, reviewers)
    _sections(doc, run)
    return fit(doc.parts, footer(run), limit)


def comment(run: RunDoc, *, number: int, link: str | None = None, limit: int = BODY_LIMIT) -> str:
    """The comment on open PR #`number` that already covers this run's failures."""
    doc = Doc()
    where = f" ({link})" if link else ""
    doc.add(
        f"agentloop run {code(run.run_id)}{where} found the failure(s) this pull request "
        f"fixes again, at {code(run.base_sha[:12])}, and fixed them again: no new pull "
        f"request was opened (#{number} already carries the same fingerprints). The new "
        "run's evidence:",
        "",
        "<details><summary>Evidence of run " + code(run.run_id) + "</summary>",
        "",
    )
    _sections(doc, run)
    doc.add("</details>", "")
    tail = f"Commented by agentloop {__version__}, run {run.run_id}.\n"
    return fit(doc.parts, tail, limit)
