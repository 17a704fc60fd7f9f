"""One Claude Code session through claude-agent-sdk (its bundled CLI unless told otherwise).

Choices, and why:
- `permission_mode="dontAsk"` with `allowed_tools` as the allow rules: exactly the allowed
  tools run, headless, and anything else is refused (and listed in `permission_denials`)
  instead of waiting for a prompt nobody answers. `bypassPermissions` is not an option:
  the CLI refuses it when run as root, which is how CI containers run us.
- `tools` is the set the allow rules name, so the model is not even offered other tools.
- `setting_sources=[]`: the repository's own `.claude/settings*.json` and the user's
  `~/.claude/settings.json` are not loaded. Their hooks, permission rules and
  `disableAllHooks` could otherwise loosen what this session may do or switch off
  agentloop's guard; agentloop's hooks are passed through the SDK instead. The price:
  the repository's CLAUDE.md and project skills are not loaded either; the prompt carries
  what the session needs.
- The system prompt is Claude Code's own (the SDK's default would be empty), with
  `system_prompt_append` added.
- The guard is a PreToolUse hook with `on_failure="block"`: a guard that raises, returns
  garbage or times out blocks the tool call rather than letting it through.
- A wall-clock timeout kills every process of the session (see processes.py), then stops
  the SDK; the SDK's own shutdown would first wait for the CLI to exit on its own.
- With a `Policy` (sandbox.py) the session's Bash runs in Claude Code's OS sandbox, the
  file tools may edit only inside the worktree and never the denied paths, commands get a
  private TMPDIR (removed afterwards), and the model API key reaches the CLI through an
  `apiKeyHelper` reading a file the sandbox hides, not through the environment its
  commands inherit. (`CLAUDE_CODE_SUBPROCESS_ENV_SCRUB` would do that too, but in CLI
  2.1.332 it leaves empty stub files such as `package.json` and `.env.local` in the
  worktree and writes to the repository's `info/exclude`.)
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import os
import shlex
import shutil
import signal
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncGenerator, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import claude_agent_sdk
from claude_agent_sdk import (
    AssistantMessage,
    ClaudeAgentOptions,
    ClaudeSDKError,
    CLINotFoundError,
    HookMatcher,
    Message,
    ProcessError,
    ResultMessage,
    SystemMessage,
    ToolResultBlock,
    UserMessage,
    query,
)
from claude_agent_sdk.types import (
    HookCallback,
    HookContext,
    HookEvent,
    HookInput,
    HookJSONOutput,
    SystemPromptPreset,
)

from agentloop.agents import processes, sandbox
from agentloop.agents.base import (
    AgentUnavailable,
    Guard,
    PermissionDenial,
    SessionLimits,
    SessionResult,
    classify,
)

# The SDK logs a failed CLI (e.g. the one a timeout killed) at ERROR level with no handler
# of its own, so Python would print it to stderr; the failure is in the SessionResult.
logging.getLogger("claude_agent_sdk").addHandler(logging.NullHandler())

# After the timeout kill, how long the SDK gets to notice the CLI is gone before its task
# is cancelled.
_KILL_GRACE_S = 2.0
_STDERR_LINES = 40
_DEFAULT_DENY_REASON = "denied by agentloop's guard"
_API_KEY = "ANTHROPIC_API_KEY"


def _write_key(private: Path, env: Mapping[str, str]) -> Path | None:
    """The session's API key in a file only this user can read, for the apiKeyHelper;
    None when there is no key to move (an OAuth login, a cloud provider)."""
    key = env.get(_API_KEY, "")
    if not key:
        return None
    folder = private / "key"
    folder.mkdir(mode=0o700)
    path = folder / "api-key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key + "\n")
    return path


def bundled_cli() -> Path:
    """Where claude-agent-sdk's wheel puts the Claude Code CLI it uses by default."""
    return Path(claude_agent_sdk.__file__).parent / "_bundled" / "claude"


def guard_hook(guard: Guard) -> HookCallback:
    """The SDK PreToolUse callback that asks `guard` about each tool call."""

    async def pre_tool_use(
        input_data: HookInput, tool_use_id: str | None, context: HookContext
    ) -> HookJSONOutput:
        if input_data["hook_event_name"] != "PreToolUse":
            return {}
        # A guard may read files or run git: keep it off the event loop.
        reason = await anyio.to_thread.run_sync(
            guard, input_data["tool_name"], input_data["tool_input"]
        )
        if reason is None:
            return {}
        return {
            "hookSpecificOutput": {
                "hookEventName": "PreToolUse",
                "permissionDecision": "deny",
                "permissionDecisionReason": reason or _DEFAULT_DENY_REASON,
            }
        }

    return pre_tool_use


def _text(content: str | list[dict[str, Any]] | None) -> str:
    if isinstance(content, list):
        return "\n".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
    return content or ""


@dataclass
class _Transcript:
    """What a session said, gathered message by message (mutable, private to a run)."""

    result: ResultMessage | None = None
    session_id: str | None = None
    assistant_messages: set[str] = field(default_factory=set)
    tool_results: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    stderr: collections.deque[str] = field(
        default_factory=lambda: collections.deque(maxlen=_STDERR_LINES)
    )
    messages: int = 0
    exit_code: int | None = None
    pid: int | None = None
    timed_out: bool = False
    interrupted: bool = False
    unavailable: CLINotFoundError | None = None

    def add(self, message: Message) -> None:
        if isinstance(message, ResultMessage):
            self.result = message
            self.session_id = message.session_id
        elif isinstance(message, SystemMessage) and message.subtype == "init":
            self.session_id = message.data.get("session_id") or self.session_id
        elif isinstance(message, AssistantMessage):
            # One model turn arrives as one message per content block, sharing an id.
            self.assistant_messages.add(message.message_id or str(len(self.assistant_messages)))
        elif isinstance(message, UserMessage) and isinstance(message.content, list):
            for block in message.content:
                if isinstance(block, ToolResultBlock):
                    self.tool_results[block.tool_use_id] = _text(block.content)

    def failed(self, exc: ClaudeSDKError) -> None:
        if isinstance(exc, ProcessError):
            self.exit_code = exc.exit_code
        # The SDK raises after an error result (ResultError, exit code 1): the result
        # already says everything, the exception is only how the SDK reports the exit.
        if self.result is None or not isinstance(exc, ProcessError):
            self.errors.append(str(exc))

    def session_result(self, duration_s: float) -> SessionResult:
        result = self.result
        errors = list(self.errors)
        if self.timed_out:
            errors.insert(0, f"timed out after {duration_s:.1f}s; the session was killed")
        if result is None:
            if not self.timed_out and self.stderr:
                errors.append("stderr:\n" + "\n".join(self.stderr))
            return SessionResult(
                outcome="timeout" if self.timed_out else "crashed",
                subtype=None,
                is_error=True,
                terminal_reason=None,
                num_turns=len(self.assistant_messages),
                # Unknown: the CLI reports cost only in its result.
                cost_usd=0.0,
                duration_s=duration_s,
                errors=tuple(errors),
                session_id=self.session_id,
                pid=self.pid,
                exit_code=self.exit_code,
            )
        denials = tuple(
            PermissionDenial(
                tool_name=str(d.get("tool_name", "")),
                tool_use_id=str(d.get("tool_use_id", "")),
                tool_input=dict(d.get("tool_input") or {}),
                message=self.tool_results.get(str(d.get("tool_use_id", "")), ""),
            )
            for d in result.permission_denials or ()
            if isinstance(d, dict)
        )
        outcome = classify(
            subtype=result.subtype,
            is_error=result.is_error,
            terminal_reason=result.terminal_reason,
            permission_denials=denials,
            api_error_status=result.api_error_status,
        )
        return SessionResult(
            # The result can arrive before the kill; the cap was still hit.
            outcome="timeout" if self.timed_out and outcome == "success" else outcome,
            subtype=result.subtype,
            is_error=result.is_error,
            terminal_reason=result.terminal_reason,
            num_turns=result.num_turns,
            cost_usd=float(result.total_cost_usd or 0.0),
            duration_s=duration_s,
            permission_denials=denials,
            errors=(*(result.errors or ()), *errors),
            text=result.result or "",
            session_id=result.session_id,
            api_error_status=result.api_error_status,
            pid=self.pid,
            exit_code=self.exit_code,
        )


class ClaudeCodeAgent:
    """Runs one Claude Code session per `run`; see the module docstring for its choices."""

    def __init__(
        self,
        *,
        cli_path: str | Path | None = None,
        system_prompt_append: str | None = None,
        guard: Guard | None = None,
        hooks: Mapping[HookEvent, Sequence[HookMatcher]] | None = None,
        model: str | None = None,
    ) -> None:
        self._cli_path = str(cli_path) if cli_path is not None else None
        self._system_prompt_append = system_prompt_append
        self._guard = guard
        self._hooks = {event: list(matchers) for event, matchers in (hooks or {}).items()}
        self._model = model
        # The sessions in flight (their marks), for `cancel` from another thread.
        self._live: dict[str, _Transcript] = {}
        self._live_lock = threading.Lock()

    def options(
        self,
        *,
        cwd: Path,
        limits: SessionLimits,
        env: Mapping[str, str],
        policy: sandbox.Policy | None = None,
        key_file: Path | None = None,
        guard: Guard | None = None,
    ) -> ClaudeAgentOptions:
        """The SDK options for one session (public so the choices can be inspected).
        `key_file`, with a sandboxed policy: where the model API key was put for the
        CLI's apiKeyHelper, out of the commands' environment and reach."""
        system_prompt: SystemPromptPreset = {"type": "preset", "preset": "claude_code"}
        if self._system_prompt_append:
            system_prompt["append"] = self._system_prompt_append
        hooks = {event: list(matchers) for event, matchers in self._hooks.items()}
        guard = guard if guard is not None else self._guard
        if guard is not None:
            # First, so no other PreToolUse matcher of ours runs on a call it denies.
            hooks["PreToolUse"] = [
                HookMatcher(matcher=None, hooks=[guard_hook(guard)], on_failure="block"),
                *hooks.get("PreToolUse", []),
            ]
        allowed = limits.allowed_tools
        settings: str | None = None
        session_env = dict(env)
        if policy is not None:
            allowed = sandbox.scoped_tools(allowed, policy.write[0], policy.write_globs)
            document = sandbox.settings(
                dataclasses.replace(
                    policy,
                    deny_read=(*policy.deny_read, key_file.parent),
                )
                if key_file is not None and policy.sandboxed
                else policy
            )
            if key_file is not None and policy.sandboxed:
                document["apiKeyHelper"] = f"cat {shlex.quote(str(key_file))}"
                session_env[_API_KEY] = ""
            settings = json.dumps(document)
        return ClaudeAgentOptions(
            cwd=str(cwd),
            tools=list(limits.tool_names),
            allowed_tools=list(allowed),
            settings=settings,
            permission_mode="dontAsk",
            max_turns=limits.max_turns,
            max_budget_usd=limits.max_budget_usd,
            system_prompt=system_prompt,
            setting_sources=[],
            # Only MCP servers agentloop passes (none today), never a repository's .mcp.json.
            strict_mcp_config=True,
            hooks=hooks or None,
            env=session_env,
            cli_path=self._cli_path,
            model=self._model,
        )

    def run(
        self,
        prompt: str,
        *,
        cwd: Path,
        limits: SessionLimits,
        env: Mapping[str, str],
        policy: sandbox.Policy | None = None,
        guard: Guard | None = None,
    ) -> SessionResult:
        mark = uuid.uuid4().hex
        sandboxed = policy is not None and policy.sandboxed
        # One private directory per session (0700): the CLI gives commands
        # $TMPDIR/claude-<uid>, so parallel sessions share nothing and nothing is left
        # behind; and the API key file, which the sandbox hides from the commands.
        private = Path(tempfile.mkdtemp(prefix="agentloop-session-"))
        (private / "tmp").mkdir()
        key_file = _write_key(private, {**os.environ, **env}) if sandboxed else None
        options = self.options(
            cwd=cwd, limits=limits, env=env, policy=policy, key_file=key_file, guard=guard
        )
        options.env[processes.MARK_VARIABLE] = mark
        options.env["TMPDIR"] = str(private / "tmp")
        transcript = _Transcript()
        options.stderr = transcript.stderr.append
        start = time.monotonic()
        with self._live_lock:
            self._live[mark] = transcript
        try:
            with sandbox.tidy(cwd, options.env) if sandboxed else nullcontext():
                anyio.run(self._session, prompt, options, limits.timeout_s, mark, transcript)
            if transcript.interrupted:
                raise KeyboardInterrupt
        finally:
            # Whatever happened (a normal end, a timeout, Ctrl-C): nothing the session
            # started outlives it, background jobs of its Bash commands included.
            with self._live_lock:
                self._live.pop(mark, None)
            processes.kill_marked(mark)
            shutil.rmtree(private, ignore_errors=True)
        refusal = next((line for line in transcript.stderr if sandbox.REFUSAL in line), None)
        if refusal is not None and not transcript.assistant_messages:
            raise sandbox.SandboxUnavailable(
                f"Claude Code refused to start without its sandbox: {refusal.strip()}",
                hint=sandbox.INSTALL_HINT,
            )
        if transcript.unavailable is not None:
            raise AgentUnavailable(
                f"Claude Code CLI not found: {transcript.unavailable}",
                hint="reinstall claude-agent-sdk (its wheel bundles the CLI) "
                "or set agent.cli_path to a `claude` binary",
            )
        return transcript.session_result(time.monotonic() - start)

    def cancel(self) -> None:
        """End every session in flight (^C during a parallel run, which Python delivers
        to the main thread only): killing a session's CLI ends its message stream, and
        its `run` raises KeyboardInterrupt in the job's thread."""
        with self._live_lock:
            live = list(self._live.items())
        for mark, transcript in live:
            transcript.interrupted = True
            processes.kill_marked(mark)

    async def _session(
        self,
        prompt: str,
        options: ClaudeAgentOptions,
        timeout_s: float | None,
        mark: str,
        transcript: _Transcript,
    ) -> None:
        async with anyio.create_task_group() as group:
            if timeout_s is not None:
                group.start_soon(self._watchdog, timeout_s, mark, transcript, group.cancel_scope)
            if threading.current_thread() is threading.main_thread():
                group.start_soon(self._on_interrupt, mark, transcript, group.cancel_scope)
            # Errors are recorded, not raised: a task group would wrap them in a group.
            messages = query(prompt=prompt, options=options)
            try:
                async for message in messages:
                    if not transcript.messages:
                        # The CLI is running by its first message; it is our direct child.
                        transcript.pid = processes.marked_child(mark)
                    transcript.messages += 1
                    transcript.add(message)
            except CLINotFoundError as exc:
                transcript.unavailable = exc
            except ClaudeSDKError as exc:
                # Includes ResultError, raised after the error result was yielded.
                transcript.failed(exc)
            finally:
                # The SDK's cleanup (closing the CLI's stdin, waiting for it) runs here.
                if isinstance(messages, AsyncGenerator):
                    await messages.aclose()
            group.cancel_scope.cancel()

    @staticmethod
    async def _on_interrupt(mark: str, transcript: _Transcript, scope: anyio.CancelScope) -> None:
        """^C: kill the session at once. Left to asyncio, ^C would cancel the message loop
        and the SDK's cleanup would give the CLI 5 s to exit on its own first (CI runners
        send SIGTERM about 7.5 s after SIGINT)."""
        with anyio.open_signal_receiver(signal.SIGINT) as signals:
            async for _ in signals:
                transcript.interrupted = True
                processes.kill_marked(mark)
                scope.cancel()
                return

    @staticmethod
    async def _watchdog(
        timeout_s: float, mark: str, transcript: _Transcript, scope: anyio.CancelScope
    ) -> None:
        await anyio.sleep(timeout_s)
        transcript.timed_out = True
        # Killing the CLI ends its output, which ends the SDK's message stream.
        processes.kill_marked(mark)
        await anyio.sleep(_KILL_GRACE_S)
        scope.cancel()
