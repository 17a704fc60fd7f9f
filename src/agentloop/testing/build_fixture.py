"""A full-stack fixture for `agentloop parallel-build`: a real repository with a Python
backend (pytest) and a TypeScript frontend (vitest), and a four-stream `build.yaml`.

The base is green (one pytest test, one vitest test) and holds none of the feature. The
manifest splits "a todo list" into:

- `contracts` (contracts): `contracts/todo.py` and `contracts/todo.ts`, the Todo type on
  both sides and its title limit;
- `api` (api-endpoint, `backend/**`), `web` (ui-feature, `frontend/src/**`) and `model`
  (data-model, `models/**`), each depending on `contracts` only, so the three are built
  at once once the contracts are merged.

`STREAM_FILES` is what each stream's agent writes (the files of a good attempt): the
end-to-end test scripts the model to write exactly these, and can check the integrated
tree against them. Every stream's own tests import the contracts, so a stream built
against a different contract fails.

vitest comes from the shared install of `agentloop.testing.npm` (linked in as
`node_modules/`, which the repository ignores): agentloop mirrors the checkout's
`node_modules` into every worktree, so the streams and the integration run the same
vitest.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from agentloop.testing.npm import make_vitest_project
from agentloop.testing.repos import PYPROJECT, git_init, write_tree

REQUEST = "Add a todo list: a shared Todo type, a backend store and handlers, a frontend list"
MANIFEST_FILE = "build.yaml"
STREAMS = ("contracts", "api", "web", "model")
# What each stream may write (also the manifest's `owns`).
OWNS = {
    "contracts": "contracts/**",
    "api": "backend/**",
    "web": "frontend/src/**",
    "model": "models/**",
}

CONTRACT_PY = '''\
"""The Todo contract, shared by the backend and the models."""

from dataclasses import dataclass

TITLE_MAX = 80
NOT_FOUND = "todo_not_found"


@dataclass(frozen=True)
class Todo:
    id: int
    title: str
    done: bool = False
'''

CONTRACT_TS = """\
// The Todo contract, shared with the backend (contracts/todo.py).
export const TITLE_MAX = 80;
export const NOT_FOUND = "todo_not_found";

export interface Todo {
  id: number;
  title: string;
  done: boolean;
}
"""

STREAM_FILES: dict[str, dict[str, str]] = {
    "contracts": {"contracts/todo.py": CONTRACT_PY, "contracts/todo.ts": CONTRACT_TS},
    "api": {
        "backend/__init__.py": "",
        "backend/todos.py": textwrap.dedent('''\
            """GET and POST /todos, as plain handlers over a dict."""

            from contracts.todo import NOT_FOUND, TITLE_MAX, Todo

            _TODOS: dict[int, Todo] = {}


            def create(title: str) -> tuple[int, dict[str, object]]:
                if not title or len(title) > TITLE_MAX:
                    return 400, {"error": "bad_title"}
                todo = Todo(id=len(_TODOS) + 1, title=title)
                _TODOS[todo.id] = todo
                return 201, {"id": todo.id, "title": todo.title, "done": todo.done}


            def get(todo_id: int) -> tuple[int, dict[str, object]]:
                todo = _TODOS.get(todo_id)
                if todo is None:
                    return 404, {"error": NOT_FOUND}
                return 200, {"id": todo.id, "title": todo.title, "done": todo.done}
            '''),
        "backend/test_todos_api.py": textwrap.dedent("""\
            from backend import todos
            from contracts.todo import NOT_FOUND, TITLE_MAX


            def test_create_then_get():
                status, body = todos.create("milk")
                assert status == 201
                assert todos.get(body["id"]) == (200, body)


            def test_limits_come_from_the_contract():
                assert todos.create("x" * (TITLE_MAX + 1))[0] == 400
                assert todos.get(999) == (404, {"error": NOT_FOUND})
            """),
    },
    "model": {
        "models/__init__.py": "",
        "models/todo_store.py": textwrap.dedent('''\
            """Todos kept in order, the model the backend will read."""

            from contracts.todo import TITLE_MAX, Todo


            class TodoStore:
                def __init__(self) -> None:
                    self._items: list[Todo] = []

                def add(self, title: str) -> Todo:
                    if len(title) > TITLE_MAX:
                        raise ValueError("title too long")
                    todo = Todo(id=len(self._items) + 1, title=title)
                    self._items.append(todo)
                    return todo

                def open(self) -> list[Todo]:
                    return [t for t in self._items if not t.done]
            '''),
        "models/test_todo_store.py": textwrap.dedent("""\
            import pytest

            from contracts.todo import TITLE_MAX
            from models.todo_store import TodoStore


            def test_added_todos_are_open():
                store = TodoStore()
                store.add("a")
                store.add("b")
                assert [t.title for t in store.open()] == ["a", "b"]


            def test_title_limit():
                with pytest.raises(ValueError):
                    TodoStore().add("x" * (TITLE_MAX + 1))
            """),
    },
    "web": {
        "frontend/src/todoList.ts": textwrap.dedent("""\
            import { TITLE_MAX, type Todo } from "../../contracts/todo";

            export function openTitles(todos: Todo[]): string[] {
              return todos.filter((t) => !t.done).map((t) => t.title.slice(0, TITLE_MAX));
            }
            """),
        "frontend/src/todoList.test.ts": textwrap.dedent("""\
            import { expect, test } from "vitest";
            import { TITLE_MAX } from "../../contracts/todo";
            import { openTitles } from "./todoList";

            test("lists the open todos", () => {
              const todos = [
                { id: 1, title: "a", done: false },
                { id: 2, title: "b", done: true },
              ];
              expect(openTitles(todos)).toEqual(["a"]);
            });

            test("cuts titles at the contract's limit", () => {
              const long = { id: 1, title: "x".repeat(TITLE_MAX + 5), done: false };
              expect(openTitles([long])[0]).toHaveLength(TITLE_MAX);
            });
            """),
    },
}

_PROMPTS = {
    "contracts": (
        "Todo contracts",
        "contracts",
        "Write the Todo type and its limits for Python and TypeScript.",
    ),
    "api": (
        "Todo handlers",
        "api-endpoint",
        "Add create and get handlers for todos in backend/todos.py.",
    ),
    "web": ("Todo list view", "ui-feature", "Add openTitles() in frontend/src/todoList.ts."),
    "model": ("Todo store", "data-model", "Add a TodoStore in models/todo_store.py."),
}


# Each stream's own tests, named in the manifest: the stream runs these in its worktree.
TESTS = {
    "api": "python -m pytest -q -p no:cacheprovider backend",
    "model": "python -m pytest -q -p no:cacheprovider models",
    "web": "npx --no-install vitest run frontend",
}


def manifest_text() -> str:
    lines = [
        f"request: {json.dumps(REQUEST)}",
        "contracts:",
        "  - {name: todo, kind: types, path: contracts/todo.py}",
        "  - {name: todo-ts, kind: types, path: contracts/todo.ts}",
        "streams:",
    ]
    for stream in STREAMS:
        title, template, prompt = _PROMPTS[stream]
        depends = "[]" if stream == "contracts" else "[contracts]"
        lines += [
            f"  - id: {stream}",
            f"    title: {title}",
            f"    template: {template}",
            f"    prompt: {json.dumps(prompt)}",
            f"    owns: ['{OWNS[stream]}']",
            f"    depends_on: {depends}",
        ]
        if stream in TESTS:
            lines.append(f"    tests: [{json.dumps(TESTS[stream])}]")
    return "\n".join(lines) + "\n"


BASE_FILES = {
    "pyproject.toml": PYPROJECT,
    ".gitignore": "node_modules/\n__pycache__/\n.pytest_cache/\n",
    "README.md": "A todo app, to be.\n",
    "agentloop.yaml": "detect:\n  flaky_reruns: 0\n",
    "tests/test_smoke.py": "def test_smoke():\n    assert True\n",
    "frontend/src/smoke.test.ts": (
        'import { expect, test } from "vitest";\n\n'
        'test("smoke", () => {\n  expect(1 + 1).toBe(2);\n});\n'
    ),
    MANIFEST_FILE: manifest_text(),
}


def fullstack_repo(root: Path, npm_cache: Path) -> Path:
    """The fixture repository at `root`, committed on `main`; vitest from `npm_cache`
    (installed there once, see `agentloop.testing.npm`)."""
    make_vitest_project(root, {}, npm_cache)
    write_tree(root, BASE_FILES)
    return git_init(root)
