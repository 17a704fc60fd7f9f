"""Test infrastructure: the files besides the tests themselves that decide what a test run
runs and how it judges it. (Placeholder until the full reader lands.)"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from agentloop.failures.classify import is_test_path

_INFRA_NAMES = frozenset(
    {"conftest.py", "pytest.ini", "tox.ini", "setup.cfg", "pyproject.toml", "package.json",
     "sitecustomize.py", "usercustomize.py"}
)  # fmt: skip
_INFRA = re.compile(
    r"^(vitest|vite|jest)\.(config|setup|workspace)\.[cm]?[jt]sx?$|^setupTests\.[jt]sx?$|\.pth$"
)


def is_test_infrastructure(path: str) -> bool:
    name = PurePosixPath(path).name
    return name in _INFRA_NAMES or bool(_INFRA.search(name))


def is_test_surface(path: str) -> bool:
    return is_test_path(path) or path.endswith(".snap") or is_test_infrastructure(path)
