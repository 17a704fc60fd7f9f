"""Install and uninstall: plan every change, refuse before writing anything, then apply.

The rules that keep the user's bytes safe:
- a file is ours only by the record (.agentloop/init.json): the sha256 it had when init
  wrote it. One that differs was changed by the user; a file at one of our paths that
  the record does not know is theirs (unless it is byte-identical to ours). Either is
  overwritten only with --force, after a copy to .agentloop/backups/.
- a file of ours that is unchanged but outdated (a newer agentloop ships another version)
  is simply updated.
- uninstall deletes only what is unchanged since init wrote it, puts backups back, and
  takes out of CLAUDE.md, .gitignore and settings.json exactly what init put in.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from agentloop import __version__, git, history, locks, session
from agentloop.agents import sandbox
from agentloop.config import Config
from agentloop.errors import UsageError
from agentloop.install import entry, files, mcpjson, settings, texts
from agentloop.install.files import (
    MANIFEST,
    Backup,
    BlockRecord,
    Copy,
    LinesRecord,
    Manifest,
    Move,
    Op,
    Remove,
    SettingsRecord,
    Write,
)
from agentloop.install.model import Action, FileResult, InitReport
from agentloop.rails.paths import ForbiddenPaths


class _Plan:
    """The changes one command will make, gathered before any of them is made."""

    def __init__(self, root: Path, old: Manifest | None, *, force: bool = False) -> None:
        self.root = root
        self.old = old
        self.force = force
        self.ops: list[Op] = []
        self.results: list[FileResult] = []
        self.conflicts: list[str] = []
        self.notes: list[str] = []
        self.backups: list[Backup] = list(old.backups) if old else []
        self.taken: set[str] = {b.backup for b in self.backups}
        for record in (old.settings, old.mcp) if old else ():
            if record and record.backup:
                self.taken.add(record.backup)

    def report(self, path: str, action: Action, detail: str = "") -> None:
        self.results.append(FileResult(path, action, detail))

    def write(self, path: str, data: bytes, mode: int | None = None) -> None:
        """Write one of our own files: a symlink there is replaced, never followed."""
        self.ops.append(Write(path, data, mode))

    def edit(self, path: str, data: bytes) -> None:
        """Write a file of the user's (CLAUDE.md, .gitignore, settings.json): through a
        symlink, keeping its mode."""
        self.ops.append(Write(path, data, follow=True))

    def save(self, path: str, data: bytes | None = None) -> str:
        """Copy the file at `path` under .agentloop/backups/ (its bytes when given: a
        symlink's own copy would point nowhere from there); return where."""
        name = files.free_backup_name(self.root, path, self.taken)
        if data is None:
            self.ops.append(Copy(path, name))
        else:
            self.ops.append(Write(name, data, _mode(self.root / path)))
        return name

    def backup(self, path: str, data: bytes | None = None) -> str:
        """Save a file init is about to replace; uninstall puts it back."""
        name = self.save(path, data)
        self.backups.append(Backup(path, name))
        return name

    def conflict(self, path: str, why: str) -> bool:
        """Record a file init may not overwrite; True when --force says to go ahead."""
        self.conflicts.append(f"{path} ({why})")
        return self.force


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _is_plain_file(path: Path) -> bool:
    return path.is_file() and not path.is_symlink()


def _not_a_file(path: str) -> UsageError:
    return UsageError(
        f"{path} is not a regular file; agentloop will not touch it",
        hint=f"move {path} away and run the command again",
    )


# ---------------------------------------------------------------- install


def _wanted_workflows(plan: _Plan, requested: bool) -> tuple[files.Asset, ...]:
    """The workflows this init installs: all of them with --workflows; otherwise the ones
    an earlier `init --workflows` installed and that are still there (kept up to date like
    the other files; one the user deleted stays deleted)."""
    shipped = files.workflows()
    if requested:
        return shipped
    recorded = plan.old.files if plan.old else {}
    return tuple(w for w in shipped if w.path in recorded and os.path.lexists(plan.root / w.path))


def _plan_assets(
    plan: _Plan, shipped: tuple[files.Asset, ...], *, editable: bool = False
) -> dict[str, str]:
    """Install the package's files as shipped. `editable`: files the user is meant to edit
    (the workflows: which Python, how to install the project): one of ours the user has
    changed since is theirs from then on and kept, not a conflict that stops every later
    init; --force still takes the package's version, after a backup."""
    root, old = plan.root, plan.old
    owned: dict[str, str] = {}
    for asset in shipped:
        path = root / asset.path
        owned[asset.path] = files.sha256(asset.data)
        recorded = old.files.get(asset.path) if old else None
        if not os.path.lexists(path):
            plan.write(asset.path, asset.data, asset.mode)
            plan.report(asset.path, "created")
            continue
        if path.is_dir() and not path.is_symlink():
            raise _not_a_file(asset.path)
        current = None if path.is_symlink() else path.read_bytes()
        if current == asset.data:
            if _mode(path) != asset.mode:
                plan.write(asset.path, asset.data, asset.mode)
                plan.report(asset.path, "updated", f"mode {asset.mode:o}")
            else:
                plan.report(asset.path, "unchanged")
            continue
        if current is not None and recorded == files.sha256(current):
            plan.write(asset.path, asset.data, asset.mode)
            plan.report(asset.path, "updated", "a newer version")
            continue
        if current is None:
            why = "a symbolic link"
        elif recorded is not None:
            why = "changed since agentloop init installed it"
        else:
            why = "not installed by agentloop init"
        if editable and current is not None and recorded is not None and not plan.force:
            # The record keeps the bytes as installed: uninstall keeps this file too.
            owned[asset.path] = recorded
            plan.report(
                asset.path, "kept", f"{why}: yours now; --force takes the package's version"
            )
            continue
        if plan.conflict(asset.path, why):
            name = plan.backup(asset.path)
            plan.write(asset.path, asset.data, asset.mode)
            plan.report(asset.path, "updated", f"{why}; your version is in {name}")
    return owned


def _plan_gone(plan: _Plan, owned: dict[str, str]) -> None:
    """Files an older agentloop installed that this one no longer ships (or a workflow the
    user deleted: it drops out of the record)."""
    root, old = plan.root, plan.old
    for rel, sha in sorted(old.files.items()) if old else ():
        path = root / rel
        if rel in owned or rel in (texts.CONFIG_FILE, entry.RECORD) or not os.path.lexists(path):
            continue
        if _is_plain_file(path) and files.sha256(path.read_bytes()) == sha:
            _restore_or_remove(plan, rel, "no longer shipped")
        else:
            plan.report(rel, "kept", "changed since agentloop init installed it; yours now")


def _restore_or_remove(plan: _Plan, rel: str, detail: str = "") -> None:
    """Take out an unchanged file of ours: put back what it replaced, if anything."""
    backups = [b for b in plan.backups if b.path == rel]
    if backups and os.path.lexists(plan.root / backups[-1].backup):
        last = backups[-1]
        plan.ops.append(Move(last.backup, rel))
        plan.backups.remove(last)
        plan.report(rel, "restored", f"from {last.backup}")
    else:
        plan.ops.append(Remove(rel))
        plan.report(rel, "removed", detail)


def _plan_config(plan: _Plan, project: texts.ProjectConfig) -> str | None:
    """agentloop.yaml: written only where the project has no configuration at all."""
    rel = texts.CONFIG_FILE
    recorded = plan.old.files.get(rel) if plan.old else None
    if project.prefill is not None:
        if os.path.lexists(plan.root / rel):
            raise _not_a_file(rel)
        data = texts.encode(project.prefill)
        plan.write(rel, data)
        names = ", ".join(s.name for s in project.suites)
        plan.report(rel, "created", f"suites: {names}" if names else "no suite found")
        return files.sha256(data)
    if recorded is not None and project.source == texts.CONFIG_FILE:
        plan.report(rel, "unchanged", "init never rewrites it")
        return recorded
    where = "pyproject.toml" if project.source and project.source != rel else rel
    plan.report(where, "unchanged", "your configuration; init never changes it")
    return None


# agentloop's records the agent's commands may not write (its sessions and the reports
# its suites write stay writable: `agentloop detect` runs inside the sandbox). Listed
# whether they exist or not (a missing one is masked, so it cannot be made either): the
# /autofix hook writes the lock record mid-session, and the settings must not change
# with what agentloop happened to have written so far.
_STATE = (
    MANIFEST,
    entry.RECORD,
    locks.LEDGER,
    files.BACKUPS,
    ".agentloop/runs",
    history.LEDGER.as_posix(),
    # The manifests a build may start from and the builds' results, written by the MCP
    # server: the agent cannot swap a manifest after it was validated, nor forge a result.
    files.BUILDS_DIR,
    # Heal runs' records and results, written by the MCP server: not forged by the agent.
    files.HEALS_DIR,
)


def rails_settings(
    root: Path, config: Config, command: Path, workflows: tuple[str, ...] = ()
) -> settings.Wanted:
    """The sandbox, permission deny rules and MCP approval init puts into settings.json:
    every session in this project, the user's own included, runs its commands in the
    sandbox (see agents.sandbox.project_policy for what differs from a headless run)."""
    top = git.find_toplevel(root)
    home = Path(os.environ.get("HOME") or Path.home())
    policy = sandbox.project_policy(
        root=root,
        top=top or root,
        forbidden=ForbiddenPaths(config.rails.forbidden_paths),
        secrets=config.rails.secret_paths,
        network=config.sandbox.network,
        home=home,
        state=_STATE,
        installation=entry.installation(command, top),
        planned=[
            *(a.path for a in files.assets()),
            *workflows,
            texts.CONFIG_FILE,
            texts.CLAUDE_MD,
            texts.GITIGNORE,
            settings.PATH,
            mcpjson.PATH,
        ],
    )
    fragment = sandbox.project_settings(policy, home=home)
    fragment["enabledMcpjsonServers"] = [mcpjson.NAME]
    # A build runs the project's code outside the sandbox: Claude Code asks the human
    # every time, even past a broad allow rule of theirs such as `mcp__agentloop`.
    fragment["permissions"]["ask"] = list(mcpjson.ASK)
    return settings.Wanted.of(fragment)


def _plan_settings(plan: _Plan, wanted: settings.Wanted) -> SettingsRecord:
    rel, path = settings.PATH, plan.root / settings.PATH
    recorded = plan.old.settings if plan.old else None
    old_owned = settings.Owned.from_json(recorded.owned if recorded else None)
    if not os.path.lexists(path):
        doc, owned = settings.merge_owned(settings.generated(), wanted, old_owned)
        plan.edit(rel, settings.dumps(doc))
        plan.report(rel, "created")
        return replace(recorded or SettingsRecord(existed=False), owned=owned.to_json())
    if not path.is_file():
        raise _not_a_file(rel)
    raw = path.read_bytes()
    current = settings.parse(raw)
    merged, owned = settings.merge_owned(settings.merge(current), wanted, old_owned)
    if recorded is None:
        # The user's own file, byte for byte: uninstall writes it back when nothing but
        # our additions changed, so their formatting survives.
        recorded = SettingsRecord(existed=True, backup=plan.save(rel, raw))
    for key, value in owned.values.items():
        if "was" in value and key not in old_owned.values:
            plan.notes.append(
                f"{rel}: {key} was {json.dumps(value['was'])}; agentloop sets "
                f"{json.dumps(value['set'])} (`agentloop init --uninstall` puts yours back)"
            )
    if merged == current:
        plan.report(rel, "unchanged")
    else:
        plan.edit(rel, settings.dumps(merged))
        plan.report(rel, "merged", "your keys and hooks kept")
    return replace(recorded, owned=owned.to_json())


def _plan_mcp(plan: _Plan) -> SettingsRecord:
    rel, path = mcpjson.PATH, plan.root / mcpjson.PATH
    recorded = plan.old.mcp if plan.old else None
    if not os.path.lexists(path):
        plan.edit(rel, mcpjson.dumps(mcpjson.merge({})))
        plan.report(rel, "created", "agentloop's MCP server (its commit tool)")
        return recorded or SettingsRecord(existed=False)
    if not path.is_file():
        raise _not_a_file(rel)
    raw = path.read_bytes()
    current = mcpjson.parse(raw)
    if mcpjson.conflict(current):
        why = f"a server of yours is named {mcpjson.NAME!r}"
        if not plan.conflict(rel, why):
            return recorded or SettingsRecord(existed=True)
        name = plan.backup(rel, raw)
        plan.notes.append(f"{rel}: {why}; it is replaced, your version is in {name}")
    elif recorded is None:
        recorded = SettingsRecord(existed=True, backup=plan.save(rel, raw))
    merged = mcpjson.merge(current)
    if merged == current:
        plan.report(rel, "unchanged")
    else:
        plan.edit(rel, mcpjson.dumps(merged))
        plan.report(rel, "merged", "agentloop's MCP server added; yours kept")
    return recorded or SettingsRecord(existed=True)


def _plan_command(plan: _Plan, command: Path) -> str:
    """.agentloop/command: the absolute agentloop the hooks and the MCP server run."""
    rel, path = entry.RECORD, plan.root / entry.RECORD
    data = f"{command}\n".encode()
    if _is_plain_file(path) and path.read_bytes() == data:
        plan.report(rel, "unchanged")
    else:
        plan.write(rel, data, 0o644)
        plan.report(rel, "created" if not os.path.lexists(path) else "updated", str(command))
    return files.sha256(data)


def _plan_claude_md(plan: _Plan, block: str) -> BlockRecord:
    rel, path = texts.CLAUDE_MD, plan.root / texts.CLAUDE_MD
    recorded = plan.old.claude_md if plan.old else None
    sha = files.sha256(texts.encode(block))
    if not path.exists():
        if os.path.lexists(path):
            raise _not_a_file(rel)
        plan.edit(rel, texts.encode(block))
        plan.report(rel, "created")
        return BlockRecord(recorded.existed if recorded else False, "", sha)
    if not path.is_file():
        raise _not_a_file(rel)
    text = texts.read_text(path)
    span = texts.find_block(text)
    if span is None:
        new, separator = texts.append_block(text, block)
        plan.edit(rel, texts.encode(new))
        plan.report(rel, "updated", "agentloop block added")
        return BlockRecord(recorded.existed if recorded else True, separator, sha)
    current = text[span[0] : span[1]]
    if current == block:
        plan.report(rel, "unchanged")
        return replace(recorded, sha256=sha) if recorded else BlockRecord(True, "", sha)
    if recorded is None or files.sha256(texts.encode(current)) != recorded.sha256:
        why = (
            "its agentloop block was edited"
            if recorded
            else "an agentloop block init did not write"
        )
        if not plan.conflict(rel, why):
            return recorded or BlockRecord(True, "", sha)
        name = plan.backup(rel, path.read_bytes())
        detail = f"{why}; the whole file as it was is in {name}"
    else:
        detail = "agentloop block updated"
    plan.edit(rel, texts.encode(text[: span[0]] + block + text[span[1] :]))
    plan.report(rel, "updated", detail)
    return BlockRecord(
        recorded.existed if recorded else True, recorded.separator if recorded else "", sha
    )


def _plan_gitignore(plan: _Plan) -> LinesRecord:
    rel, path = texts.GITIGNORE, plan.root / texts.GITIGNORE
    recorded = plan.old.gitignore if plan.old else None
    if not path.exists():
        if os.path.lexists(path):
            raise _not_a_file(rel)
        plan.edit(rel, texts.encode(texts.GITIGNORE_LINES))
        plan.report(rel, "created")
        return LinesRecord(recorded.existed if recorded else False, texts.GITIGNORE_LINES)
    if not path.is_file():
        raise _not_a_file(rel)
    text = texts.read_text(path)
    if texts.ignores_state(text):
        plan.report(rel, "unchanged")
        return recorded or LinesRecord(existed=True, added="")
    new, added = texts.append_lines(text)
    plan.edit(rel, texts.encode(new))
    plan.report(rel, "updated", ".agentloop/ ignored")
    return LinesRecord(recorded.existed if recorded else True, added)


def _refuse(conflicts: list[str]) -> UsageError:
    many = len(conflicts) > 1
    return UsageError(
        f"agentloop init would overwrite {len(conflicts)} file{'s' if many else ''} of "
        f"yours: {'; '.join(conflicts)}; nothing was changed",
        hint="look at them first; `agentloop init --force` overwrites them and keeps a copy "
        "of each in .agentloop/backups/ (`agentloop init --uninstall` puts it back)",
    )


def install(root: Path, *, force: bool = False, workflows: bool = False) -> InitReport:
    old = files.read_manifest(root)
    plan = _Plan(root, old, force=force)
    project = texts.project_config(root)
    command = entry.entry_point()
    flows = _wanted_workflows(plan, workflows)
    owned = _plan_assets(plan, files.assets())
    owned.update(_plan_assets(plan, flows, editable=True))
    _plan_gone(plan, owned)
    if any(r.action == "created" and r.path.startswith(files.WORKFLOWS_DIR) for r in plan.results):
        plan.notes.append(
            "the workflows need the secret ANTHROPIC_API_KEY and the repository setting "
            '"Allow GitHub Actions to create and approve pull requests" (README: GitHub Actions)'
        )
    owned[entry.RECORD] = _plan_command(plan, command)
    config_sha = _plan_config(plan, project)
    wanted = rails_settings(root, project.config, command, tuple(w.path for w in flows))
    settings_record = _plan_settings(plan, wanted)
    mcp_record = _plan_mcp(plan)
    block = texts.render_block(project.config, project.suites)
    block_record = _plan_claude_md(plan, block)
    lines_record = _plan_gitignore(plan)
    if plan.conflicts and not force:
        raise _refuse(plan.conflicts)
    targets = [t for t in map(files.target, plan.ops) if t is not None]
    created = files.new_dirs(root, [*targets, MANIFEST])
    if config_sha is not None:
        owned[texts.CONFIG_FILE] = config_sha
    manifest = Manifest(
        agentloop_version=__version__,
        files=owned,
        settings=settings_record,
        mcp=mcp_record,
        claude_md=block_record,
        gitignore=lines_record,
        created_dirs=tuple(sorted({*(old.created_dirs if old else ()), *created})),
        backups=tuple(plan.backups),
    )
    data = files.dump_manifest(manifest)
    manifest_path = root / MANIFEST
    if not (_is_plain_file(manifest_path) and manifest_path.read_bytes() == data):
        plan.write(MANIFEST, data)
        if not any(r.action != "unchanged" for r in plan.results):
            plan.notes.append(f"recorded the installation in {MANIFEST}")
    files.apply(root, plan.ops)
    warning = entry.hooks_warning(command)
    return InitReport(
        root=root,
        uninstall=False,
        results=tuple(plan.results),
        notes=(*project.notes, *plan.notes),
        wrote=bool(plan.ops),
        warnings=(warning,) if warning else (),
    )


# ---------------------------------------------------------------- uninstall


def _leftovers(root: Path) -> list[str]:
    """Files of agentloop's in a project without an install record."""
    found: list[str] = []
    claude = root / files.CLAUDE_DIR
    for dirpath, _dirs, names in os.walk(claude) if claude.is_dir() else ():
        for name in names:
            path = Path(dirpath) / name
            if _is_plain_file(path) and files.is_marked(path.read_bytes()):
                found.append(path.relative_to(root).as_posix())
    mcp_path = root / mcpjson.PATH
    if _is_plain_file(mcp_path):
        try:
            servers = json.loads(mcp_path.read_bytes()).get("mcpServers", {})
        except (ValueError, AttributeError):
            servers = {}
        if isinstance(servers, dict) and mcpjson.ours(servers.get(mcpjson.NAME)):
            found.append(mcpjson.PATH)
    settings_path = root / settings.PATH
    if _is_plain_file(settings_path):
        try:
            doc = json.loads(settings_path.read_bytes())
        except ValueError:
            doc = None
        if isinstance(doc, dict) and settings.ours(doc):
            found.append(settings.PATH)
    claude_md = root / texts.CLAUDE_MD
    if claude_md.is_file() and texts.BEGIN in texts.read_text(claude_md):
        found.append(texts.CLAUDE_MD)
    workflows = root / files.WORKFLOWS_DIR
    for path in sorted(workflows.iterdir()) if workflows.is_dir() else ():
        if _is_plain_file(path) and files.is_marked(path.read_bytes()):
            found.append(path.relative_to(root).as_posix())
    config = root / texts.CONFIG_FILE
    if _is_plain_file(config) and files.is_marked(config.read_bytes()):
        found.append(texts.CONFIG_FILE)
    return sorted(set(found))


def _unplan_files(plan: _Plan, old: Manifest) -> None:
    for rel, sha in sorted(old.files.items()):
        path = plan.root / rel
        if not os.path.lexists(path):
            continue
        if _is_plain_file(path) and files.sha256(path.read_bytes()) == sha:
            _restore_or_remove(plan, rel)
        else:
            plan.report(rel, "kept", "changed since agentloop init installed it")
    # Backups not put back above: an earlier version of a file, or the file is there.
    for backup in list(plan.backups):
        if not os.path.lexists(plan.root / backup.backup):
            continue
        if not os.path.lexists(plan.root / backup.path):
            plan.ops.append(Move(backup.backup, backup.path))
            plan.report(backup.path, "restored", f"from {backup.backup}")
        else:
            plan.report(backup.backup, "kept", f"an earlier version of your {backup.path}")


def _unplan_json(
    plan: _Plan,
    rel: str,
    record: SettingsRecord | None,
    parse: Callable[[bytes], dict[str, Any]],
    unmerge: Callable[[dict[str, Any]], dict[str, Any]],
    dumps: Callable[[dict[str, Any]], bytes],
) -> None:
    """Take init's part out of a JSON file of the user's (settings.json, .mcp.json)."""
    if record is None:
        return
    path = plan.root / rel
    backup = plan.root / record.backup if record.backup else None
    original = backup.read_bytes() if backup is not None and _is_plain_file(backup) else None
    if not os.path.lexists(path):
        if original is not None and record.backup:
            plan.ops.append(Move(record.backup, rel))
            plan.report(rel, "restored", f"from {record.backup}")
        return
    if not path.is_file():
        raise _not_a_file(rel)
    raw = path.read_bytes()
    current = parse(raw)
    remaining = unmerge(current)
    if record.backup and original is not None:
        plan.ops.append(Remove(record.backup))
        try:
            before = json.loads(original)
        except ValueError:
            before = None
        # The original bytes go back when the only difference is what init put in (and
        # the original had nothing of ours: uninstall never leaves anything of ours).
        if isinstance(before, dict) and unmerge(before) == before == remaining:
            if raw != original:
                plan.edit(rel, original)
                plan.report(rel, "restored", "your original file, byte for byte")
            else:
                plan.report(rel, "unchanged")
            return
    if not record.existed and not remaining:
        plan.ops.append(Remove(rel))
        plan.report(rel, "removed")
    elif remaining != current:
        plan.edit(rel, dumps(remaining))
        plan.report(rel, "updated", "agentloop's part taken out; the rest kept")
    else:
        plan.report(rel, "unchanged")


def _unplan_settings(plan: _Plan, record: SettingsRecord | None) -> None:
    owned = settings.Owned.from_json(record.owned if record else None)
    _unplan_json(
        plan,
        settings.PATH,
        record,
        lambda raw: settings.parse(raw, retry="agentloop init --uninstall"),
        # Only what this record says is init's, and hooks of ours wherever they are.
        lambda doc: settings.unmerge(settings.unmerge_owned(doc, owned)),
        settings.dumps,
    )


def _unplan_mcp(plan: _Plan, record: SettingsRecord | None) -> None:
    _unplan_json(
        plan,
        mcpjson.PATH,
        record,
        lambda raw: mcpjson.parse(raw, retry="agentloop init --uninstall"),
        mcpjson.unmerge,
        mcpjson.dumps,
    )


def _unplan_claude_md(plan: _Plan, record: BlockRecord | None) -> None:
    rel, path = texts.CLAUDE_MD, plan.root / texts.CLAUDE_MD
    if record is None or not path.is_file():
        return
    text = texts.read_text(path)
    span = texts.find_block(text)
    if span is None:
        return
    if files.sha256(texts.encode(text[span[0] : span[1]])) != record.sha256:
        plan.report(rel, "kept", "its agentloop block was edited since init; remove it by hand")
        return
    new = texts.remove_block(text, span, record.separator)
    if not record.existed and not new:
        plan.ops.append(Remove(rel))
        plan.report(rel, "removed")
    else:
        plan.edit(rel, texts.encode(new))
        plan.report(rel, "updated", "agentloop block taken out")


# What agentloop itself writes under .agentloop/ besides init's own files. Working state
# goes with the installation; the history of runs (the ledger, run reports) and the
# copies of the user's files are kept, and said so: deleting them is the user's call.
_WORKING_STATE = (f"{session.SESSIONS_DIR.as_posix()}/", f"{texts.REPORTS}/", locks.LEDGER)
_HISTORY = (
    *(history.LEDGER.as_posix() + end for end in ("", "-wal", "-shm", "-journal")),
    ".agentloop/runs/",
    f"{files.BACKUPS}/",
    # /parallel-build's manifests and builds: the plans the user approved, and their logs.
    f"{files.BUILDS_DIR}/",
    # Heal runs started from /auto-fix-production: their logs and results.
    f"{files.HEALS_DIR}/",
)
SELF_IGNORE = f"{files.STATE_DIR}/.gitignore"
_SELF_IGNORE_TEXT = (
    b"# agentloop:managed - agentloop's run history, kept by `agentloop init --uninstall`.\n"
    b"# This folder ignores itself; delete the whole folder when you no longer want it.\n"
    b"*\n"
)


def _matches(rel: str, patterns: tuple[str, ...]) -> bool:
    return any(rel.startswith(p) if p.endswith("/") else rel == p for p in patterns)


def _state_left(plan: _Plan) -> list[str]:
    """What stays in .agentloop/ after this uninstall (run history, reports…)."""
    going = {op.path for op in plan.ops if isinstance(op, Remove)}
    going |= {op.src for op in plan.ops if isinstance(op, Move)}
    state = plan.root / files.STATE_DIR
    left: list[str] = []
    for dirpath, _dirs, names in os.walk(state) if state.is_dir() else ():
        for name in names:
            rel = (Path(dirpath) / name).relative_to(plan.root).as_posix()
            if rel not in going:
                left.append(rel)
    return sorted(left)


def _unplan_state(plan: _Plan) -> tuple[list[str], list[str]]:
    """Remove agentloop's working state (/autofix session records, suite reports, a stale
    hold record); return what is left in .agentloop/: (agentloop's history, other files)."""
    kept: list[str] = []
    other: list[str] = []
    removed = 0
    for rel in _state_left(plan):
        if rel == SELF_IGNORE:
            continue
        if _matches(rel, _WORKING_STATE):
            plan.ops.append(Remove(rel))
            removed += 1
        elif _matches(rel, _HISTORY):
            kept.append(rel)
        else:
            other.append(rel)
    if removed:
        plan.report(
            files.STATE_DIR + "/",
            "removed",
            f"{removed} file{'s' if removed > 1 else ''} of working state "
            "(/autofix session records, suite reports)",
        )
    return kept, other


def _unplan_gitignore(plan: _Plan, record: LinesRecord | None) -> None:
    rel, path = texts.GITIGNORE, plan.root / texts.GITIGNORE
    history_left, others = _unplan_state(plan)
    if history_left:
        runs = {r.split("/")[2] for r in history_left if r.startswith(".agentloop/runs/")}
        what = ", ".join(
            part
            for part in (
                "the run ledger (history.db)"
                if any(r.startswith(history.LEDGER.as_posix()) for r in history_left)
                else "",
                f"{len(runs)} run report{'s' if len(runs) != 1 else ''}" if runs else "",
                "backups of your files"
                if any(r.startswith(files.BACKUPS) for r in history_left)
                else "",
                "parallel-build manifests and logs"
                if any(r.startswith(files.BUILDS_DIR) for r in history_left)
                else "",
                "heal run logs" if any(r.startswith(files.HEALS_DIR) for r in history_left) else "",
            )
            if part
        )
        plan.notes.append(
            f"{files.STATE_DIR}/ keeps agentloop's history ({what}): `agentloop stats` reads "
            f"it; delete {files.STATE_DIR}/ when you no longer want it"
        )
    if record is None or not record.added or not path.is_file():
        return
    text = texts.read_text(path)
    new = texts.remove_lines(text, record.added)
    if new is None:
        return
    if others:
        # Files agentloop did not write: taking the lines out now would put them in
        # `git status` (and in the next `git add -A`).
        plan.report(
            rel,
            "kept",
            f"{files.STATE_DIR}/ still holds {others[0]}"
            + (f" and {len(others) - 1} more" if len(others) > 1 else "")
            + f", not agentloop's; delete {files.STATE_DIR}/, then the agentloop lines",
        )
        return
    if history_left:
        # The history stays out of git without the lines: the folder ignores itself.
        plan.ops.append(Write(SELF_IGNORE, _SELF_IGNORE_TEXT))
        plan.report(SELF_IGNORE, "created", "the history left in it stays out of git")
    if not record.existed and not new:
        plan.ops.append(Remove(rel))
        plan.report(rel, "removed")
    else:
        plan.edit(rel, texts.encode(new))
        plan.report(rel, "updated", "agentloop lines taken out")


def uninstall(root: Path) -> InitReport:
    old = files.read_manifest(root)
    if old is None:
        leftovers = _leftovers(root)
        if leftovers:
            raise UsageError(
                f"no install record ({MANIFEST}) here, but agentloop files are: "
                f"{', '.join(leftovers)}; uninstall only removes what it has a record of",
                hint="remove them by hand (they may be committed: `git rm`), or run "
                "`agentloop init` first to record them and then `agentloop init --uninstall`",
            )
        return InitReport(
            root=root,
            uninstall=True,
            results=(),
            notes=("nothing to uninstall: agentloop is not installed here",),
        )
    # An /autofix still holding the user's files read-only (Claude Code was killed in the
    # middle of one) lets go: the settings file it wrote into is the user's.
    locks.release(root)
    plan = _Plan(root, old)
    _unplan_files(plan, old)
    _unplan_settings(plan, old.settings)
    _unplan_mcp(plan, old.mcp)
    _unplan_claude_md(plan, old.claude_md)
    plan.ops.append(Remove(MANIFEST))
    _unplan_gitignore(plan, old.gitignore)
    files.apply(root, plan.ops)
    working = [f"{files.STATE_DIR}/{d}" for d in ("sessions", "reports")]
    files.remove_empty_dirs(root, [*old.created_dirs, *working, files.STATE_DIR])
    return InitReport(
        root=root, uninstall=True, results=tuple(plan.results), notes=tuple(plan.notes), wrote=True
    )
