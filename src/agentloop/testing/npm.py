"""Test helper: a pinned vitest installed once into a cache and shared by throwaway projects.

`vitest_modules` runs `npm install` once per cache directory and version; later calls (from
this process or any other) reuse the result. The install happens in a private temporary
directory that is renamed into place only when complete, under an exclusive file lock, so
concurrent callers never see, or produce, a half-installed tree.

`make_vitest_project` writes a tiny ES-module project whose `node_modules` is a real
directory holding one symlink per top-level entry of that shared install (`.bin`, `vitest`,
`@vitest`, ...). vitest 4 runs fine through symlinks: Node resolves packages by their real
path. node_modules itself is not a single symlink on purpose: vitest writes its results
cache to `<root>/node_modules/.vite/vitest/<hash>/results.json` (the same hash for every
project) and parses it at start-up without a guard, so projects sharing one node_modules
directory would share, and could corrupt, that file when run concurrently.

npm's cache lives inside the given cache directory (never ~/.npm); HOME is left as the
caller has it.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

# The newest vitest that supports the Node 20 found on agentloop's machines
# (vitest 5 requires Node >= 22.12). Verified with npm 11 and Node 20.20.
VITEST_VERSION = "4.1.12"

_NPM_TIMEOUT_SECONDS = 600
_MARKER = ".agentloop-complete"


def _npm_env(cache_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["npm_config_cache"] = str(cache_dir / "npm-cache")
    env["npm_config_update_notifier"] = "false"
    env["npm_config_fund"] = "false"
    env["npm_config_audit"] = "false"
    return env


def _npm_install(workdir: Path, cache_dir: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm was not found on PATH; vitest tests need node and npm")
    try:
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund"],
            check=True,
            capture_output=True,
            text=True,
            timeout=_NPM_TIMEOUT_SECONDS,
            stdin=subprocess.DEVNULL,
            env=_npm_env(cache_dir),
            cwd=workdir,
        )
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(
            f"npm install of vitest {VITEST_VERSION} failed (exit {exc.returncode}):\n{exc.stderr}"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raw: str | bytes | None = exc.stderr
        stderr = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else (raw or "")
        raise RuntimeError(
            f"npm install of vitest {VITEST_VERSION} timed out after "
            f"{_NPM_TIMEOUT_SECONDS}s:\n{stderr}"
        ) from exc


@contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    with path.open("a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _is_complete(install_dir: Path) -> bool:
    return (install_dir / _MARKER).is_file() and (install_dir / "node_modules").is_dir()


def vitest_modules(cache_dir: Path) -> Path:
    """Install vitest (pinned) once into cache_dir/vitest-<version>/ and return its node_modules.

    Safe to call repeatedly and from concurrent processes: an exclusive lock serialises the
    installs, and each install is built in a temporary directory renamed into place when done.
    Raises RuntimeError (with npm's stderr) when npm is missing or the install fails.
    """
    cache_dir = cache_dir.resolve()
    install_dir = cache_dir / f"vitest-{VITEST_VERSION}"
    if _is_complete(install_dir):
        return install_dir / "node_modules"
    cache_dir.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(cache_dir / f"vitest-{VITEST_VERSION}.lock"):
        if _is_complete(install_dir):
            return install_dir / "node_modules"
        if install_dir.exists():
            # Not ours, or left by an older helper without the marker: start over.
            shutil.rmtree(install_dir)
        staging = Path(tempfile.mkdtemp(prefix=f".vitest-{VITEST_VERSION}-", dir=cache_dir))
        try:
            staging.chmod(0o755)  # mkdtemp makes it 0700; the install is meant to be shared
            manifest = {
                "name": "agentloop-vitest-cache",
                "private": True,
                "devDependencies": {"vitest": VITEST_VERSION},
            }
            (staging / "package.json").write_text(
                json.dumps(manifest, indent=2) + "\n", encoding="utf-8"
            )
            _npm_install(staging, cache_dir)
            (staging / _MARKER).write_text(VITEST_VERSION + "\n", encoding="utf-8")
            os.rename(staging, install_dir)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return install_dir / "node_modules"


def _checked_relative(name: str) -> PurePosixPath:
    rel = PurePosixPath(name)
    if not name or rel.is_absolute() or ".." in rel.parts or rel == PurePosixPath("."):
        raise ValueError(f"project file path must be relative and inside the project: {name!r}")
    if rel.parts[0] == "node_modules":
        raise ValueError(f"project files may not be written into node_modules: {name!r}")
    return rel


def make_vitest_project(dest: Path, files: Mapping[str, str], cache_dir: Path) -> Path:
    """Write a vitest project into dest and return dest.

    Writes package.json (`"type": "module"`, `"scripts": {"test": "vitest"}`), then each of
    `files` (relative POSIX path -> content; a "package.json" entry replaces the default one),
    and fills dest/node_modules with symlinks to the entries of `vitest_modules(cache_dir)`
    (see the module docstring for why it is not one symlink). Run the tests with
    `node_modules/.bin/vitest run` inside dest. Calling it again on the same dest rewrites
    the files and repairs the links.
    """
    checked = {name: _checked_relative(name) for name in files}
    modules = vitest_modules(cache_dir)
    dest.mkdir(parents=True, exist_ok=True)
    manifest = {
        "name": "agentloop-vitest-project",
        "private": True,
        "type": "module",
        "scripts": {"test": "vitest"},
        "devDependencies": {"vitest": VITEST_VERSION},
    }
    (dest / "package.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    for name, content in files.items():
        target = dest.joinpath(*checked[name].parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("w", encoding="utf-8", newline="") as handle:
            handle.write(content)
    _link_modules(dest / "node_modules", modules)
    return dest


def _link_modules(project_modules: Path, shared: Path) -> None:
    if project_modules.is_symlink():
        project_modules.unlink()
    project_modules.mkdir(exist_ok=True)
    for entry in sorted(shared.iterdir()):
        if entry.name.startswith(".") and entry.name != ".bin":
            continue  # .vite (caches), .package-lock.json: per project, or not needed
        link = project_modules / entry.name
        if link.is_symlink():
            if Path(os.readlink(link)) == entry:
                continue
            link.unlink()
        elif link.exists():
            raise FileExistsError(f"{link} exists and is not a symlink; refusing to replace it")
        link.symlink_to(entry, target_is_directory=entry.is_dir())
