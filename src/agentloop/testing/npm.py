"""Test helper: pinned npm packages installed once into a cache and shared by throwaway projects.

`node_modules` runs `npm install` once per cache directory and set of pinned packages (the
install directory is named after a short hash of the sorted package specs); later calls
(from this process or any other) reuse the result. The install happens in a private
temporary directory that is renamed into place only when complete, under an exclusive file
lock, so concurrent callers never see, or produce, a half-installed tree.

`make_npm_project` writes a tiny project whose `node_modules` is a real directory holding
one symlink per top-level entry of that shared install (`.bin`, `vitest`, `@vitest`,
`jest`, ...). vitest 4 and jest 30 run fine through symlinks: Node resolves packages by
their real path, and jest does not crawl symlinked directories. node_modules itself is not
a single symlink on purpose: vitest writes its results cache to
`<root>/node_modules/.vite/vitest/<hash>/results.json` (the same hash for every project)
and parses it at start-up without a guard, so projects sharing one node_modules directory
would share, and could corrupt, that file when run concurrently.

`make_vitest_project` (an ES-module project, `"test": "vitest"`) and `make_jest_project`
(CommonJS, `"test": "jest"`, with jest-junit) are the two projects agentloop's tests use.

npm's cache lives inside the given cache directory (never ~/.npm); HOME is left as the
caller has it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from agentloop import proc

# The newest vitest that supports the Node 20 found on agentloop's machines
# (vitest 5 requires Node >= 22.12). Verified with npm 11 and Node 20.20.
VITEST_VERSION = "4.1.12"
# jest and its JUnit reporter, verified with npm 11 and Node 20.20.
JEST_VERSION = "30.5.2"
JEST_JUNIT_VERSION = "17.0.0"

_NPM_TIMEOUT_SECONDS = 600
_MARKER = ".agentloop-complete"


def _npm_env(cache_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["npm_config_cache"] = str(cache_dir / "npm-cache")
    env["npm_config_update_notifier"] = "false"
    env["npm_config_fund"] = "false"
    env["npm_config_audit"] = "false"
    return env


def _specs(packages: Mapping[str, str]) -> str:
    return ", ".join(f"{name}@{version}" for name, version in sorted(packages.items()))


def _npm_install(workdir: Path, cache_dir: Path, packages: Mapping[str, str]) -> None:
    what = _specs(packages)
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(f"npm was not found on PATH; installing {what} needs node and npm")
    try:
        done = proc.run(
            [npm, "install", "--no-audit", "--no-fund"],
            cwd=workdir,
            timeout=_NPM_TIMEOUT_SECONDS,
            env=_npm_env(cache_dir),
        )
    except proc.CommandNotFound as exc:
        raise RuntimeError(
            f"npm ({exc.program}) could not be started; installing {what} needs node and npm"
        ) from exc
    if done.timed_out:
        raise RuntimeError(
            f"npm install of {what} timed out after {_NPM_TIMEOUT_SECONDS}s:\n{done.stderr}"
        )
    if not done.ok:
        raise RuntimeError(f"npm install of {what} failed (exit {done.returncode}):\n{done.stderr}")


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


def packages_key(packages: Mapping[str, str]) -> str:
    """A short, stable hash of the sorted package specs: names the shared install."""
    canonical = json.dumps(sorted(packages.items()), separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]


def _checked_packages(packages: Mapping[str, str]) -> dict[str, str]:
    if not packages:
        raise ValueError("at least one npm package is needed")
    for name, version in packages.items():
        if not name or not version or any(ch.isspace() for ch in name + version):
            raise ValueError(f"not a pinned npm package spec: {name!r}: {version!r}")
    return dict(sorted(packages.items()))


def node_modules(packages: Mapping[str, str], cache_dir: Path) -> Path:
    """Install `packages` (name -> pinned version) once into cache_dir/modules-<key>/ and
    return its node_modules, where <key> is `packages_key(packages)`.

    Safe to call repeatedly and from concurrent processes: an exclusive lock serialises the
    installs, and each install is built in a temporary directory renamed into place when done.
    Raises RuntimeError (with npm's stderr) when npm is missing or the install fails.
    """
    wanted = _checked_packages(packages)
    cache_dir = cache_dir.resolve()
    name = f"modules-{packages_key(wanted)}"
    install_dir = cache_dir / name
    if _is_complete(install_dir):
        return install_dir / "node_modules"
    cache_dir.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(cache_dir / f"{name}.lock"):
        if _is_complete(install_dir):
            return install_dir / "node_modules"
        if install_dir.exists():
            # Not ours, or left half-made by a killed helper: start over.
            shutil.rmtree(install_dir)
        staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=cache_dir))
        try:
            staging.chmod(0o755)  # mkdtemp makes it 0700; the install is meant to be shared
            manifest = {
                "name": "agentloop-npm-cache",
                "private": True,
                "devDependencies": wanted,
            }
            (staging / "package.json").write_text(
                json.dumps(manifest, indent=2) + "\n", encoding="utf-8"
            )
            _npm_install(staging, cache_dir, wanted)
            (staging / _MARKER).write_text(_specs(wanted) + "\n", encoding="utf-8")
            os.rename(staging, install_dir)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return install_dir / "node_modules"


def vitest_modules(cache_dir: Path) -> Path:
    """The shared node_modules holding vitest (pinned); see `node_modules`."""
    return node_modules({"vitest": VITEST_VERSION}, cache_dir)


def _checked_relative(name: str) -> PurePosixPath:
    rel = PurePosixPath(name)
    if not name or rel.is_absolute() or ".." in rel.parts or rel == PurePosixPath("."):
        raise ValueError(f"project file path must be relative and inside the project: {name!r}")
    if rel.parts[0] == "node_modules":
        raise ValueError(f"project files may not be written into node_modules: {name!r}")
    return rel


def make_npm_project(
    dest: Path,
    files: Mapping[str, str],
    cache_dir: Path,
    *,
    packages: Mapping[str, str],
    scripts: Mapping[str, str],
    type_module: bool = True,
) -> Path:
    """Write an npm project into dest and return dest.

    Writes package.json (`"type": "module"` unless type_module is False, the given
    `scripts`, and `packages` as devDependencies), then each of `files` (relative POSIX
    path -> content; a "package.json" entry replaces the default one), and fills
    dest/node_modules with symlinks to the entries of `node_modules(packages, cache_dir)`
    (see the module docstring for why it is not one symlink). Calling it again on the same
    dest rewrites the files and repairs the links.
    """
    checked = {name: _checked_relative(name) for name in files}
    modules = node_modules(packages, cache_dir)
    dest.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, object] = {"name": "agentloop-npm-project", "private": True}
    if type_module:
        manifest["type"] = "module"
    manifest["scripts"] = dict(scripts)
    manifest["devDependencies"] = dict(sorted(packages.items()))
    (dest / "package.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    for name, content in files.items():
        target = dest.joinpath(*checked[name].parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("w", encoding="utf-8", newline="") as handle:
            handle.write(content)
    _link_modules(dest / "node_modules", modules)
    return dest


def make_vitest_project(dest: Path, files: Mapping[str, str], cache_dir: Path) -> Path:
    """Write a vitest project (ES modules, `"scripts": {"test": "vitest"}`) into dest and
    return dest; see `make_npm_project`. Run the tests with `node_modules/.bin/vitest run`
    inside dest."""
    return make_npm_project(
        dest,
        files,
        cache_dir,
        packages={"vitest": VITEST_VERSION},
        scripts={"test": "vitest"},
    )


def make_jest_project(dest: Path, files: Mapping[str, str], cache_dir: Path) -> Path:
    """Write a jest project (CommonJS, `"scripts": {"test": "jest"}`, jest and jest-junit
    pinned) into dest and return dest; see `make_npm_project`. Run the tests with
    `node_modules/.bin/jest` inside dest."""
    return make_npm_project(
        dest,
        files,
        cache_dir,
        packages={"jest": JEST_VERSION, "jest-junit": JEST_JUNIT_VERSION},
        scripts={"test": "jest"},
        type_module=False,
    )


def _link_modules(project_modules: Path, shared: Path) -> None:
    if project_modules.is_symlink():
        project_modules.unlink()
    project_modules.mkdir(exist_ok=True)
    entries = [
        entry
        for entry in sorted(shared.iterdir())
        # .vite (caches), .package-lock.json: per project, or not needed
        if not entry.name.startswith(".") or entry.name == ".bin"
    ]
    names = {entry.name for entry in entries}
    for stale in project_modules.iterdir():
        # Links into another shared install (the project's packages changed).
        if stale.is_symlink() and stale.name not in names:
            stale.unlink()
    for entry in entries:
        link = project_modules / entry.name
        if link.is_symlink():
            if Path(os.readlink(link)) == entry:
                continue
            link.unlink()
        elif link.exists():
            raise FileExistsError(f"{link} exists and is not a symlink; refusing to replace it")
        link.symlink_to(entry, target_is_directory=entry.is_dir())
