"""The records of a parallel build: the manifest (what to build, who owns what), and what
each stream and the integration did. Parsing and validation live in build/manifest.py;
these are the typed values every part passes around."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# What a stream is for; each template adds its own guidance to the stream's prompt.
Template = Literal["contracts", "api-endpoint", "ui-feature", "data-model", "custom"]
StreamOutcome = Literal["built", "failed", "rejected", "skipped", "interrupted"]


@dataclass(frozen=True)
class Contract:
    """What streams agree on before any of them is built: shared types, an API's request
    and response schemas, error codes. `path` is the file that holds it (owned by a
    contracts stream); on a merge conflict, the contract wins."""

    name: str
    kind: Literal["types", "api", "errors", "other"]
    path: str
    description: str = ""


@dataclass(frozen=True)
class Stream:
    id: str  # [a-z0-9-]+: part of a branch name
    title: str
    template: Template
    prompt: str
    # gitignore-style globs, relative to the repository's top: the only paths this
    # stream's agent may write.
    owns: tuple[str, ...]
    depends_on: tuple[str, ...] = ()
    # The commands that test this stream's work, run in its worktree (empty: the
    # repository's configured suites).
    tests: tuple[str, ...] = ()
    # The contracts (by name) this stream builds against; None: every contract. Validation
    # holds the stream to depend on the streams that write them (contracts come first).
    uses: tuple[str, ...] | None = None

    @property
    def is_contracts(self) -> bool:
        return self.template == "contracts"


@dataclass(frozen=True)
class Manifest:
    request: str  # the feature request, as the user gave it
    streams: tuple[Stream, ...]
    contracts: tuple[Contract, ...] = ()

    def stream(self, stream_id: str) -> Stream:
        return next(s for s in self.streams if s.id == stream_id)

    def contracts_of(self, stream: Stream) -> tuple[Contract, ...]:
        """The contracts `stream` builds against (a contracts stream: none)."""
        if stream.is_contracts:
            return ()
        if stream.uses is None:
            return self.contracts
        return tuple(c for c in self.contracts if c.name in stream.uses)


@dataclass(frozen=True)
class StreamReport:
    stream: str
    outcome: StreamOutcome
    branch: str | None
    commit: str | None
    # Seconds from the build's start: when the stream's session began and ended (the
    # overlap of streams built at once is read from these).
    started_s: float
    finished_s: float
    attempts: int
    cost_usd: float
    reason: str = ""
    # Paths the stream's change touched outside what it owns (a rejected attempt).
    violations: tuple[str, ...] = ()

    @property
    def duration_s(self) -> float:
        return self.finished_s - self.started_s
