"""Code given to an interpreter on its command line or in a heredoc: `python -c`,
`python - <<EOF`, `node -e`, `perl -e`, `ruby -e`, `php -r`.

Python is parsed with `ast`, so its string literals passed to `open(..., "w")`,
`Path(...).write_text` and the like are targets, and anything dynamic (a computed name,
`os.system`, `exec`, `open` passed around) makes the targets unknown. The others are read
with regular expressions, which cannot follow what code does with a string: a string
literal that names a forbidden path is refused whatever the code does with it, a call that
writes files to a computed path or runs a program makes the targets unknown.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence

from agentloop.rails.shell_words import State, Word

__all__ = ["PYTHONS", "SCRIPTING", "python", "scripting"]

PYTHONS = re.compile(r"^(python|pypy)[0-9.]*$")

# --- python --------------------------------------------------------------------------

_WRITE_METHODS = {"write_text", "write_bytes", "touch", "mkdir", "unlink", "rmdir", "symlink_to",
                  "hardlink_to", "chmod", "lchmod"}  # fmt: skip
_PATH_MOVES = {"rename", "replace"}
_OS_WRITES = {
    "remove", "unlink", "rmdir", "removedirs", "mkdir", "makedirs", "rename", "renames",
    "replace", "symlink", "link", "truncate", "chmod", "chown", "lchown", "rmtree", "move",
    "copy", "copy2", "copyfile", "copytree", "copymode", "copystat", "utime", "mkfifo",
    "mknod",
}  # fmt: skip
_PY_DYNAMIC = {
    "system", "popen", "exec", "eval", "compile", "__import__", "run", "call", "check_call",
    "check_output", "Popen", "getstatusoutput", "getoutput", "import_module", "open_code",
    "getattr", "setattr", "globals", "locals", "vars", "fdopen", "startfile", "fork",
    "forkpty",
}  # fmt: skip
# Reaching a builtin without calling it by name: `f = open`, `builtins.open`.
_PY_INDIRECT = {"open", "__builtins__", "builtins", "__dict__", "ctypes", "pty", "_io"}
# Modules whose functions write or run programs, when imported by name.
_PY_UNFOLLOWED = {"os", "shutil", "subprocess", "io", "pty", "ctypes", "_io", "builtins",
                  "importlib", "codecs", "posix"}  # fmt: skip
# Options of python that take a value; `-c` and `-m` end the options.
_PY_VALUES = "WX"
_PY_FLAGS = "bBdEhiIOPqRsSuvVx"


_INFORMATION = {"-V", "--version", "-h", "--help", "-v"}


def python(args: Sequence[Word], state: State, stdin: str | None) -> None:
    """`stdin` is a heredoc's or a here-string's text, when the command has one."""
    if args and all(w.text in _INFORMATION - {"-v"} for w in args):
        return  # `python3 --version`
    index = 0
    while index < len(args):
        word = args[index]
        text = word.text
        index += 1
        if text == "-" or word.dynamic or not text.startswith("-") or text.startswith("--"):
            if text == "-":
                break
            if text.startswith("--") and text != "--":
                continue  # --version, --help, --check-hash-based-pycs takes a value: harmless
            if word.dynamic:
                state.flag(f"python runs the computed script {text!r}")
            return  # a script: it writes what it writes (see rails/shell.py)
        # A cluster: `-Sc code`, `-IEc`, `-ccode`, `-mpytest`, `-W error`.
        for position, letter in enumerate(text[1:], start=1):
            rest = text[position + 1 :]
            if letter == "c":
                code = rest if rest else (args[index].text if index < len(args) else None)
                dynamic = False if rest else (index < len(args) and args[index].dynamic)
                if code is not None:
                    python_code(code, dynamic, state)
                return
            if letter == "m":
                return  # a module: `python -m pytest` writes what it writes
            if letter in _PY_VALUES:
                if not rest:
                    index += 1
                break
            if letter not in _PY_FLAGS:
                state.flag(f"python {text}: an option this analysis does not know")
                return
    if stdin is not None:
        python_code(stdin, False, state)
    else:
        state.flag("python reads its program from its input")


def python_code(code: str, dynamic: bool, state: State) -> None:
    if dynamic:
        state.flag("python -c runs computed code")
    state.mention(code)
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        state.flag("python code that does not parse")
        return
    called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            _python_call(node, state)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            state.mention(node.value)
        elif isinstance(node, ast.Name) and node.id in _PY_INDIRECT and id(node) not in called:
            state.flag(f"python uses {node.id} without calling it, which may write anything")
        elif isinstance(node, ast.Attribute) and node.attr in _PY_INDIRECT:
            state.flag(f"python reaches .{node.attr}, which may write anything")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            module = node.module if isinstance(node, ast.ImportFrom) else None
            if module is not None and module.split(".")[0] in _PY_UNFOLLOWED:
                # `from os import remove; remove(x)`: calls by a bare name are not followed.
                state.flag(f"python imports names from {module}")
            for alias in node.names:
                if alias.name.split(".")[0] in _PY_UNFOLLOWED - {"os"} or alias.asname:
                    state.flag(f"python imports {alias.name} under another name")


def _literal(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Call) and node.args and _name(node.func) in ("Path", "PurePath"):
        return _literal(node.args[0])
    return None


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _python_call(node: ast.Call, state: State) -> None:
    name = _name(node.func)
    keywords = {k.arg: k.value for k in node.keywords if k.arg}
    if name == "open" and isinstance(node.func, ast.Attribute) and not node.args:
        # Path(...).open("w")
        _python_open(_literal(node.func.value), keywords.get("mode"), state)
        return
    if name == "open" and isinstance(node.func, ast.Attribute) and node.args:
        if _name(node.func.value) == "os":
            flags = ast.unparse(node.args[1]) if len(node.args) > 1 else ""
            if any(f in flags for f in ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND")):
                _python_target(node.args[0], "write", state)
            return
        owner_path = _literal(node.func.value)
        if owner_path is not None:  # Path("x").open("w")
            _python_open(owner_path, node.args[0], state)
            return
        _python_open_call(node, keywords, state)
        return
    if name == "open":
        _python_open_call(node, keywords, state)
    elif name in _WRITE_METHODS and isinstance(node.func, ast.Attribute):
        owner = node.func.value
        if _name(owner) == "os":
            for arg in node.args[:1]:
                _python_target(arg, "write", state)
        elif _literal(owner) is not None or isinstance(owner, ast.Call):
            _python_target(owner, "write", state)
        else:
            state.flag(f"python calls .{name}() on a computed path")
    elif (
        name in _PATH_MOVES
        and isinstance(node.func, ast.Attribute)
        and (_name(node.func.value) != "os")
    ):
        _python_target(node.func.value, "move", state)
        for arg in node.args:
            _python_target(arg, "move", state)
    elif name in _OS_WRITES and isinstance(node.func, ast.Attribute):
        module = _name(node.func.value)
        if module in ("os", "shutil"):
            targets = (
                node.args
                if name not in ("copy", "copy2", "copyfile", "copytree")
                else (node.args[1:2])
            )
            if not targets:
                state.flag(f"python {module}.{name} with computed arguments")
            for arg in targets:
                _python_target(arg, "write", state)
    elif name in _PY_DYNAMIC or name.startswith(("exec", "spawn", "posix_spawn")):
        state.flag(f"python calls {name}(), which may write anything")


def _python_open_call(node: ast.Call, keywords: dict[str, ast.expr], state: State) -> None:
    path = node.args[0] if node.args else keywords.get("file")
    mode = node.args[1] if len(node.args) > 1 else keywords.get("mode")
    if path is None:
        state.flag("python open() with a computed path")
        return
    literal = _literal(path)
    if literal is None:
        if mode is None or _write_mode(mode) is not False:
            state.flag("python open() of a computed path")
        return
    _python_open(literal, mode, state)


def _python_open(path: str | None, mode: ast.expr | None, state: State) -> None:
    writes = _write_mode(mode) if mode is not None else False
    if writes is False:
        return
    if path is None:
        state.flag("python opens a computed path for writing")
        return
    state.add(path, "write")
    if writes is None:
        state.flag(f"python opens {path!r} with a computed mode")


def _write_mode(mode: ast.expr) -> bool | None:
    """True for a write mode, False for a read mode, None when computed."""
    if isinstance(mode, ast.Constant) and isinstance(mode.value, str):
        return any(c in mode.value for c in "wax+")
    return None


def _python_target(node: ast.expr, action: str, state: State) -> None:
    literal = _literal(node)
    if literal is None:
        state.flag(f"python {action}s a computed path")
    else:
        state.add(literal, action)


# --- node, perl, ruby, php -----------------------------------------------------------

# Each language: the options whose value is code, the code-running calls, the file-changing
# calls. A match of `runs` makes the targets unknown; so does a match of `writes`, unless
# (JavaScript only) its first argument is a string literal, which is then a target.
_JS_WRITES = (
    r"\b(?:writeFile|appendFile|createWriteStream|rm|rmdir|unlink|rename|copyFile|cp|mkdir|"
    r"mkdtemp|symlink|link|truncate|open|chmod|chown|lchown|utimes|lutimes|outputFile|"
    r"writeJson|outputJson|remove|move|emptyDir|ensureFile|ensureDir|writeTextFile)"
    r"(?:Sync)?\s*\(\s*"
)
_JS_RUNS = (
    r"child_process|\bexec(?:Sync|File|FileSync)?\s*\(|\bspawn(?:Sync)?\s*\(|\bfork\s*\(|"
    r"\beval\s*\(|\bFunction\s*\(|\bvm\b|process\.binding|process\.dlopen|\bimport\s*\(|"
    r"require\s*\(\s*[^'\"`\s]|worker_threads|Deno\.(?:run|Command)|Bun\.(?:spawn|\$)|"
    r"globalThis|\bReflect\b|[\w)\]]\s*\[\s*[^\]\d\s]"
)
_SCRIPTING_RULES: dict[str, tuple[str, str]] = {
    "js": (_JS_RUNS, _JS_WRITES),
    "perl": (
        r"\bsystem\b|\bexec\b|\bqx\b|`|\bfork\b|\beval\b|\bdo\b|\brequire\b|\bsyscall\b|"
        r"\bpipe\b|\bsymbol\b|&\$|&\{",
        r"\b(?:open|sysopen|unlink|rename|mkdir|rmdir|symlink|link|truncate|chmod|chown|"
        r"utime|copy|move|make_path|mkpath|remove_tree|rmtree|write_file)\b",
    ),
    "ruby": (
        r"\bsystem\b|\bexec\b|\bspawn\b|\bfork\b|`|%x|IO\.popen|Open3|\beval\b|_eval\b|"
        r"\bsend\b|public_send|\bKernel\b|\brequire\b|\bload\b|\bsyscall\b|\bProcess\b|"
        r"\bmethod\s*\(|\bconst_get\b|\bObjectSpace\b",
        r"\bFile\b|\bIO\.(?:write|sysopen|open|binwrite)|FileUtils|\bDir\.|Pathname|"
        r"\bopen\s*\(|\bopen\s+['\"]",
    ),
    "php": (
        r"\bsystem\b|\bexec\b|shell_exec|passthru|popen|proc_open|\beval\b|\bassert\b|`|"
        r"pcntl_|call_user_func|\$\w+\s*\(|\binclude\b|\brequire\b",
        r"file_put_contents|fopen|unlink|rename|\bcopy\b|mkdir|rmdir|symlink|\blink\b|"
        r"\btouch\b|chmod|chown|tempnam|fwrite|SplFileObject",
    ),
}
# program name: (language, options whose value is code, other options that take a value).
SCRIPTING: dict[str, tuple[str, set[str], set[str]]] = {
    "node": ("js", {"-e", "--eval", "-p", "--print"},
             {"-r", "--require", "--import", "--input-type", "--loader", "--conditions",
              "-C", "--env-file", "--title", "--inspect-port"}),
    "nodejs": ("js", {"-e", "--eval", "-p", "--print"},
               {"-r", "--require", "--import", "--input-type", "--loader", "-C"}),
    "bun": ("js", {"-e", "--eval", "-p", "--print"}, {"-r", "--preload", "--cwd"}),
    "tsx": ("js", {"-e", "--eval", "-p", "--print"}, {"-r", "--require", "--import"}),
    "ts-node": ("js", {"-e", "--eval", "-p", "--print"}, {"-r", "--require", "-P",
                                                         "--project", "-O",
                                                         "--compiler-options"}),
    "perl": ("perl", {"-e", "-E"}, {"-I", "-M", "-m", "-x"}),
    "ruby": ("ruby", {"-e"}, {"-I", "-r", "-C", "-E", "-x"}),
    "php": ("php", {"-r"}, {"-d", "-c", "-z"}),
}  # fmt: skip
_JS_LITERAL = re.compile(r"""'((?:[^'\\\n]|\\.)*)'|"((?:[^"\\\n]|\\.)*)"|`((?:[^`\\]|\\.)*)`""")


def scripting(name: str, args: Sequence[Word], state: State, stdin: str | None) -> None:
    """node/bun/tsx/perl/ruby/php: the code they are given, and (perl -i, ruby -i) the
    files they edit in place."""
    language, code_options, value_options = SCRIPTING[name]
    if args and all(w.text in _INFORMATION for w in args):
        return  # `node --version`
    code: list[Word] = []
    in_place = False
    script: Word | None = None
    operands: list[Word] = []
    index = 0
    while index < len(args):
        word = args[index]
        text = word.text
        index += 1
        option, equals, value = text.partition("=")
        if script is not None or (code and not text.startswith("-")) or word.dynamic:
            operands.append(word)
            continue
        if text == "-":
            script = word
            continue
        if text == "--":
            operands.extend(args[index:])
            break
        if option in code_options or (
            language != "js" and text[:2] in code_options and len(text) > 2
        ):
            if equals and option in code_options:
                code.append(Word(value))
            elif option in code_options and index < len(args):
                code.append(args[index])
                index += 1
            elif option not in code_options:
                code.append(Word(text[2:]))  # perl -e'print 1'
            continue
        if language in ("perl", "ruby") and re.match(r"^-[a-zA-Z]", text):
            index, edits = _cluster(name, text, args, index, code, state)
            in_place = in_place or edits
            continue
        if option in value_options and not equals:
            index += 1
            continue
        if text.startswith("-"):
            continue
        script = word
    # `node --test` and `node --run x` run files of their own; `cat x.js | node` and
    # `node -` read the program from the input.
    reads_input = not args or (language != "js" and not code and script is None)
    if (script is not None and script.text == "-") or (not code and script is None):
        if stdin is not None:
            code.append(Word(stdin))
        elif reads_input or script is not None:
            state.flag(f"{name} reads its program from its input")
    if in_place:
        for word in operands:
            state.add(word.text, "write", word.dynamic)
    for word in code:
        _scripting_code(word.text, word.dynamic, language, name, state)


# Libraries whose functions act on the command's operands: `perl -MExtUtils::Command -e
# rm_f auth/x`, `ruby -run -e cp -- a auth/b`.
_OPERAND_LIBRARIES = {"perl": ("ExtUtils::Command",), "ruby": ("un", "fileutils")}


def _cluster(
    name: str, text: str, args: Sequence[Word], index: int, code: list[Word], state: State
) -> tuple[int, bool]:
    """One perl/ruby option cluster (`-pi.bak`, `-lne`, `-MFile::Copy`, `-run`): the index
    of the next word, and whether it edits files in place."""
    language = SCRIPTING[name][0]
    takes = "IMmCx" if language == "perl" else "IrCEx"
    for position, letter in enumerate(text[1:], start=1):
        rest = text[position + 1 :]
        if letter == "i":
            return index, True  # the rest is a backup suffix
        if letter == "e" or (letter == "E" and language == "perl"):
            if rest:
                code.append(Word(rest))
            elif index < len(args):
                code.append(args[index])
                index += 1
            return index, False
        if letter in takes:
            value = rest
            if not rest and letter != "x" and index < len(args):
                value = args[index].text
                index += 1
            library = value.split("=")[0]
            if letter in "Mmr" and library.startswith(_OPERAND_LIBRARIES[language]):
                state.flag(f"{name} -{letter}{library} acts on the files it is given")
            return index, False
    return index, False


def _scripting_code(code: str, dynamic: bool, language: str, name: str, state: State) -> None:
    if dynamic:
        state.flag(f"{name} runs computed code")
    state.mention(code)
    runs, writes = _SCRIPTING_RULES[language]
    for match in _JS_LITERAL.finditer(code):
        raw = next(g for g in match.groups() if g is not None)
        if match.group(3) is not None and "${" in raw:
            continue
        literal = _unescape(raw)
        state.mention(literal)
        state.add(literal, "reference")
    found = re.search(runs, code)
    if found:
        near = code[max(0, found.start() - 12) : found.end() + 12].strip()
        state.flag(f"{name} code runs programs or computed code (near {near!r})")
    for call in re.finditer(writes, code):
        if language != "js":
            state.flag(f"{name} code changes files ({call.group(0).strip()})")
            return
        first = _JS_LITERAL.match(code, call.end())
        if first is None or (first.group(3) is not None and "${" in first.group(3)):
            state.flag(f"{name} code writes to a computed path ({call.group(0).strip()}...)")
        else:
            raw = next(g for g in first.groups() if g is not None)
            state.add(_unescape(raw), "write")


_JS_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u\{[0-9a-fA-F]+\}|u[0-9a-fA-F]{4}|[0-7]{1,3}|.)", re.S)
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}


def _unescape(raw: str) -> str:
    """A string literal's value: `'au\\x74h/x'` is `auth/x`."""

    def one(match: re.Match[str]) -> str:
        code = match.group(1)
        try:
            if code.startswith("x"):
                return chr(int(code[1:], 16))
            if code.startswith("u{"):
                return chr(int(code[2:-1], 16))
            if code.startswith("u") and len(code) == 5:
                return chr(int(code[1:], 16))
            if code.isdigit() and code != "0":
                return chr(int(code, 8))
        except (ValueError, OverflowError):
            return "\ufffd"
        return _SIMPLE_ESCAPES.get(code, code)

    return _JS_ESCAPE.sub(one, raw)
