"""The name a failure says is missing: an attribute of a module or class, a global name,
an export, a module or package.

A function renamed in one module breaks every test that calls it, each at its own line:
some at collection (`cannot import name 'foo' from 'pkg.mod'`), some at the call
(`module 'pkg.mod' has no attribute 'foo'`). What those failures share is not where they
crash but what they name, so grouping keys them on it (`key`). Only messages that name a
missing thing are read; a value of the wrong type (`'NoneType' object has no attribute
'x'`, `data.map is not a function`) names no missing symbol and is left to the ordinary
signature, so two different bugs never share a key.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import Literal

from agentloop.failures.model import Dialect

Kind = Literal["attribute", "name", "module", "export", "member"]
Language = Literal["python", "js"]


@dataclass(frozen=True)
class Missing:
    language: Language
    kind: Kind
    name: str
    # The module or class it is missing from, when the message says.
    owner: str = ""

    def key(self) -> tuple[str, str, str, str]:
        # A JS export is named by its owner in one message (`does not provide an export
        # named`) and not in the other (`add is not a function`): the name alone decides.
        owner = "" if self.kind == "export" else self.owner
        return (self.language, self.kind, owner, self.name)

    def describe(self) -> str:
        if self.kind == "attribute":
            return f"{self.owner} has no attribute {self.name}"
        if self.kind == "name":
            return f"name {self.name} is not defined"
        if self.kind == "module":
            return f"no module named {self.name}"
        if self.kind == "member":
            return f"{self.owner}.{self.name} is not a function"
        if self.owner:
            return f"{self.owner} has no export {self.name}"
        return f"{self.name} is not a function (no such export)"


# ---------------------------------------------------------------- Python

_PY_MODULE_ATTR = re.compile(r"\bmodule '(?P<owner>[\w.]+)' has no attribute '(?P<name>\w+)'")
_PY_TYPE_ATTR = re.compile(r"^type object '(?P<owner>[\w.]+)' has no attribute '(?P<name>\w+)'")
_PY_OBJECT_ATTR = re.compile(r"^'(?P<owner>[\w.]+)' object has no attribute '(?P<name>\w+)'")
_PY_IMPORT = re.compile(
    r"cannot import name '(?P<name>\w+)' from (?:partially initialized module )?'(?P<owner>[\w.]+)'"
)
_PY_MODULE = re.compile(r"No module named '(?P<name>[\w.]+)'")
_PY_NAME = re.compile(r"^(?:global )?name '(?P<name>\w+)' is not defined")
# An instance of these lacking an attribute is a value of the wrong type (None where a
# dict was meant), not a name that went missing; mocks are judged as stale mocks.
# fmt: off
_VALUE_TYPES = frozenset({
    "NoneType", "int", "float", "complex", "bool", "str", "bytes", "bytearray", "list", "dict",
    "tuple", "set", "frozenset", "object", "type", "function", "method",
    "builtin_function_or_method", "generator", "coroutine", "Mock", "MagicMock",
    "NonCallableMock", "NonCallableMagicMock", "AsyncMock", "PropertyMock",
})
# fmt: on


def _python(error_type: str, message: str) -> Missing | None:
    if error_type in ("ModuleNotFoundError", "ImportError"):
        module = _PY_MODULE.search(message)
        if module:
            return Missing("python", "module", module["name"])
        imported = _PY_IMPORT.search(message)
        if imported:
            return Missing("python", "attribute", imported["name"], imported["owner"])
        return None
    if error_type == "AttributeError":
        found = _PY_MODULE_ATTR.search(message) or _PY_TYPE_ATTR.search(message)
        if found is None:
            found = _PY_OBJECT_ATTR.search(message)
            if found is None or found["owner"] in _VALUE_TYPES:
                return None
        return Missing("python", "attribute", found["name"], found["owner"])
    if error_type == "NameError":
        undefined = _PY_NAME.search(message)
        return Missing("python", "name", undefined["name"]) if undefined else None
    return None


# ---------------------------------------------------------------- JavaScript

_JS_INTEROP = re.compile(r"^\(0\s*,\s*(?P<owner>[\w$]+)\.(?P<name>[\w$]+)\) is not a function")
_JS_CALL = re.compile(
    r"^(?P<expr>[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*) is not a (?:function|constructor)\b"
)
_JS_NOT_DEFINED = re.compile(r"^(?P<name>[A-Za-z_$][\w$]*) is not defined\b")
_JS_NO_EXPORT = re.compile(
    r"The requested module '(?P<owner>[^']+)' does not provide an export named '(?P<name>[^']+)'"
)
_JS_MODULE = (
    # jest: Cannot find module 'x' from 'test/a.test.js'
    re.compile(r"Cannot find module '(?P<spec>[^']+)' from '(?P<importer>[^']+)'"),
    # node ESM, vitest: Cannot find module|package 'x' imported from /abs/test/a.test.js
    re.compile(r"Cannot find (?:module|package) '(?P<spec>[^']+)' imported from (?P<importer>\S+)"),
    # vite: Failed to resolve import "x" from "test/a.test.js". Does the file exist?
    re.compile(r'Failed to resolve import "(?P<spec>[^"]+)" from "(?P<importer>[^"]+)"'),
    re.compile(r"Cannot find (?:module|package) '(?P<spec>[^']+)'"),
)
# Bindings compilers make for an import: babel's `_math` (for ./math), vitest's
# `__vi_import_0__`, `__vite_ssr_import_0__`. A call through one names the module's export.
_VITEST_BINDING = re.compile(r"^__vite?_(?:ssr_)?import_\d+__$")
_BABEL_BINDING = re.compile(r"^_(?P<module>[A-Za-z$][\w$]*?)\d*$")
# `x.map is not a function` says x is not an array (or a string, a promise…): a value of
# the wrong type, not a missing name.
# fmt: off
_VALUE_METHODS = frozenset({
    "map", "filter", "forEach", "reduce", "find", "findIndex", "some", "every", "includes",
    "indexOf", "join", "slice", "splice", "concat", "push", "pop", "shift", "unshift", "sort",
    "flat", "flatMap", "fill", "then", "catch", "finally", "split", "trim", "toLowerCase",
    "toUpperCase", "replace", "replaceAll", "startsWith", "endsWith", "padStart", "padEnd",
    "toFixed", "call", "apply", "bind",
})
# fmt: on
_JS_EXTENSIONS = (".js", ".mjs", ".cjs", ".jsx", ".ts", ".mts", ".cts", ".tsx")


def _module_name(spec: str, importer: str | None) -> str:
    """A package by its name (`lodash/fp` → `lodash`); a file by its path, resolved
    against the importing file and without its extension, so `../src/x` and `./x.js` of
    the same file are one module."""
    if spec.startswith("."):
        base = posixpath.dirname(importer) if importer else ""
        spec = posixpath.normpath(posixpath.join(base, spec))
    elif not spec.startswith("/"):
        parts = spec.split("/")
        return "/".join(parts[:2]) if spec.startswith("@") else parts[0]
    for extension in _JS_EXTENSIONS:
        if spec.endswith(extension):
            return spec[: -len(extension)]
    return spec


def _owner_module(binding: str) -> str:
    if _VITEST_BINDING.match(binding):
        return ""
    babel = _BABEL_BINDING.match(binding)
    return babel["module"] if babel else binding


def _js(error_type: str, message: str) -> Missing | None:
    first = message.strip().splitlines()[0] if message.strip() else ""
    for pattern in _JS_MODULE:
        module = pattern.search(first)
        if module:
            importer = module.groupdict().get("importer")
            return Missing("js", "module", _module_name(module["spec"], importer))
    export = _JS_NO_EXPORT.search(first)
    if export:
        owner = posixpath.basename(_module_name(export["owner"], None))
        return Missing("js", "export", export["name"], owner)
    if error_type == "ReferenceError":
        undefined = _JS_NOT_DEFINED.match(first)
        return Missing("js", "name", undefined["name"]) if undefined else None
    if error_type != "TypeError":
        return None
    interop = _JS_INTEROP.match(first)
    if interop:
        return Missing("js", "export", interop["name"], _owner_module(interop["owner"]))
    call = _JS_CALL.match(first)
    if call is None:
        return None
    *path, name = call["expr"].split(".")
    if not path:
        return Missing("js", "export", name)
    if name in _VALUE_METHODS:
        return None
    if len(path) == 1 and (_VITEST_BINDING.match(path[0]) or _BABEL_BINDING.match(path[0])):
        return Missing("js", "export", name, _owner_module(path[0]))
    return Missing("js", "member", name, ".".join(path))


def missing(dialect: Dialect, error_type: str, message: str) -> Missing | None:
    """What `message` says is missing, if it names one thing that is missing."""
    if dialect == "pytest":
        return _python(error_type, message)
    if dialect in ("vitest", "jest"):
        return _js(error_type, message)
    return None
