"""Programs that name the files they write: their write targets, program by program.

Each handler reads a command's arguments the way the program does (GNU options,
`-t DIR`, `tar xf`, `sed 's/a/b/w file'`, `awk -i inplace`) and adds what it may change
to the State: targets, or a reason the targets cannot be known. Programs that unpack or
copy trees (`tar -x`, `unzip`, `rsync -a`, `cp -r`) write files they do not name: their
destination is an "extract" target, which the guard refuses unless it is a scratch
directory outside the repository.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterable

from agentloop.rails.shell_words import State, Word, parse_options

__all__ = ["HANDLERS"]

Handler = Callable[[list[Word], State], None]


def _all(action: str, short_values: str = "", long_values: Iterable[str] = ()) -> Handler:
    def handle(args: list[Word], state: State) -> None:
        for word in parse_options(args, short_values, long_values).operands:
            state.add(word.text, action, word.dynamic)

    return handle


def _into(directory: Word, sources: list[Word], action: str, state: State) -> None:
    """`cp a b DIR`: DIR itself, and DIR/a and DIR/b, which is what it writes when DIR is
    a directory (`cp /tmp/x/auth .` writes ./auth)."""
    # `.` itself is not written by `cp x .`, only ./x; what an "extract" receives is.
    if action == "extract" or directory.dynamic or posixpath.normpath(directory.text) != ".":
        state.add(directory.text, action, directory.dynamic)
    if directory.dynamic:
        return
    for source in sources:
        name = posixpath.basename(source.text.rstrip("/"))
        if name and name not in (".", ".."):
            joined = posixpath.normpath(posixpath.join(directory.text, name))
            state.add(joined, action, source.dynamic)


def _copy(move: bool) -> Handler:
    def handle(args: list[Word], state: State) -> None:
        parsed = parse_options(
            args,
            "tS",
            # Long options with a required value only: `--backup[=CONTROL]` takes its
            # value attached, so a next word is an operand (perhaps the destination).
            {"--target-directory", "--suffix", "--sparse", "--no-preserve"},
        )  # fmt: skip
        operands = parsed.operands
        directory = parsed.value("-t", "--target-directory")
        if directory is not None:
            destination, sources = Word(directory), operands
        elif operands:
            destination, sources = operands[-1], operands[:-1]
        else:
            return
        recursive = parsed.has("-r", "-R", "-a", "--recursive", "--archive")
        action = "move" if move else ("extract" if recursive else "write")
        if parsed.has("-T", "--no-target-directory"):
            state.add(destination.text, action, destination.dynamic)
        else:
            _into(destination, sources, action, state)
        if move:
            for word in sources:
                state.add(word.text, "move", word.dynamic)
        elif parsed.has("-l", "--link", "-s", "--symbolic-link"):
            # A link to a forbidden file is a way to write it later.
            for word in sources:
                state.add(word.text, "point", word.dynamic)

    return handle


def _scp(args: list[Word], state: State) -> None:
    parsed = parse_options(args, "cFiJlmoPSDX")
    if parsed.has("-S"):
        state.flag("scp -S runs a program")
    if len(parsed.operands) < 2:
        return
    destination, sources = parsed.operands[-1], parsed.operands[:-1]
    if re.match(r"^[^/]*:", destination.text):
        return  # to another host: the sandbox's network rules decide
    _into(destination, sources, "extract" if parsed.has("-r") else "write", state)


def _ln(args: list[Word], state: State) -> None:
    parsed = parse_options(args, "tS", {"--target-directory", "--suffix"})
    operands = parsed.operands
    directory = parsed.value("-t", "--target-directory")
    if directory is not None:
        links, sources = [Word(directory)], operands
        _into(Word(directory), sources, "link", state)
    elif len(operands) >= 2:
        links, sources = [operands[-1]], operands[:-1]
        if len(operands) > 2 or operands[-1].text.endswith("/"):
            _into(operands[-1], sources, "link", state)
        else:
            state.add(operands[-1].text, "link", operands[-1].dynamic)
    elif operands:
        links, sources = [Word(".")], operands
        name = posixpath.basename(operands[0].text.rstrip("/")) or operands[0].text
        state.add(name, "link", operands[0].dynamic)
    else:
        return
    symbolic = parsed.has("-s", "--symbolic")
    for source in sources:
        # What the link points at: a link into auth/ is a way to write auth/ later. A
        # relative symbolic link is resolved from the link's directory.
        pointed = source.text
        if symbolic and not pointed.startswith(("/", "~")):
            pointed = posixpath.normpath(posixpath.join(posixpath.dirname(links[0].text), pointed))
        state.add(pointed or ".", "point", source.dynamic)


def _install(args: list[Word], state: State) -> None:
    parsed = parse_options(
        args, "mogSt", {"--mode", "--owner", "--group", "--suffix", "--target-directory"}
    )
    if parsed.has("-d", "--directory"):
        for word in parsed.operands:
            state.add(word.text, "write", word.dynamic)
        return
    directory = parsed.value("-t", "--target-directory")
    if directory is not None:
        _into(Word(directory), parsed.operands, "write", state)
    elif len(parsed.operands) > 2 or (parsed.operands and parsed.operands[-1].text.endswith("/")):
        _into(parsed.operands[-1], parsed.operands[:-1], "write", state)
    elif parsed.operands:
        state.add(parsed.operands[-1].text, "write", parsed.operands[-1].dynamic)


def _dd(args: list[Word], state: State) -> None:
    for word in args:
        if word.text.startswith("of="):
            state.add(word.text[3:], "write", word.dynamic)


def _mode(args: list[Word], state: State) -> None:
    options: list[str] = []
    operands: list[Word] = []
    for word in args:
        # `chmod -x f`: a mode, not an option.
        if re.match(r"^-(R|v|f|c|h|H|L|P|-[a-z-]+(=.*)?)$", word.text):
            options.append(word.text)
        else:
            operands.append(word)
    if not any(o.startswith("--reference") for o in options):
        operands = operands[1:]
    for word in operands:
        state.add(word.text, "mode", word.dynamic)


def _patch(args: list[Word], state: State) -> None:
    parsed = parse_options(
        args, "oidpDBrVxYzFg", {"--output", "--input", "--directory", "--strip", "--reject-file"}
    )
    if parsed.has("--dry-run", "-C", "--check"):
        return
    output = parsed.value("-o", "--output")
    if output is not None:
        state.add(output, "write")
        return
    state.flag("patch changes files named inside the patch")


# --- sed -----------------------------------------------------------------------------


def _sed(args: list[Word], state: State) -> None:
    scripts: list[Word] = []
    script_file = False
    in_place = sandbox = False
    operands: list[Word] = []
    index = 0
    while index < len(args):
        word = args[index]
        text = word.text
        index += 1
        if text == "--":
            operands.extend(args[index:])
            break
        if word.dynamic or not text.startswith("-") or text == "-":
            operands.append(word)
        elif text.startswith("--"):
            name, equals, value = text.partition("=")
            in_place = in_place or name == "--in-place"
            sandbox = sandbox or name == "--sandbox"
            if name in ("--expression", "--file", "--line-length"):
                if not equals and index < len(args):
                    value = args[index].text
                    index += 1
                if name == "--expression":
                    scripts.append(Word(value))
                script_file = script_file or name == "--file"
        else:
            for position, letter in enumerate(text[1:], start=1):
                rest = text[position + 1 :]
                if letter == "i":
                    in_place = True
                    break  # the rest is a backup suffix
                if letter in "efl":
                    if not rest and index < len(args):
                        rest = args[index].text
                        index += 1
                    if letter == "e":
                        scripts.append(Word(rest))
                    script_file = script_file or letter == "f"
                    break
    if not scripts and not script_file and operands:
        scripts, operands = [operands[0]], operands[1:]
    if script_file and not sandbox:
        state.flag("sed -f runs a script file this analysis does not read")
    if not sandbox:
        for script in scripts:
            if script.dynamic:
                state.flag("sed runs a computed script")
            _sed_script(script.text, state)
    if in_place:
        for word in operands:
            state.add(word.text, "write", word.dynamic)


_SED_SIMPLE = set("=dDgGhHlnNpPxzF}") | {"q", "Q", "L"}


def _sed_script(script: str, state: State) -> None:
    """The files a sed script writes: `w file`, `W file` and the `w file` flag of `s`;
    `e` and the `e` flag of `s` run commands."""
    index = 0
    end = len(script)

    def to_line_end(start: int) -> tuple[str, int]:
        stop = script.find("\n", start)
        stop = end if stop < 0 else stop
        return script[start:stop].strip(), stop

    def delimited(start: int, delimiter: str) -> int:
        """The index just after the next unescaped `delimiter` from `start`."""
        while start < end and script[start] != delimiter:
            start += 2 if script[start] == "\\" else 1
        return start + 1

    while index < end:
        char = script[index]
        if char in " \t\n;{!,$~+" or char.isdigit():
            index += 1
        elif char == "/":
            index = delimited(index + 1, "/")
        elif char == "\\" and index + 1 < end:
            index = delimited(index + 2, script[index + 1])
        elif char == "#":
            _, index = to_line_end(index)
        elif char in "sy" and index + 1 < end:
            delimiter = script[index + 1]
            index = delimited(delimited(index + 2, delimiter), delimiter)
            if char == "s":
                flags = re.match(r"[gpiImMe0-9]*", script[index:])
                letters = flags.group(0) if flags else ""
                index += len(letters)
                if "e" in letters:
                    state.flag("sed s///e runs the pattern space as a command")
                if index < end and script[index] == "w":
                    name, index = to_line_end(index + 1)
                    state.add(name, "write")
        elif char in "wW":
            name, index = to_line_end(index + 1)
            state.add(name, "write")
        elif char == "e":
            state.flag("sed e runs a command")
            _, index = to_line_end(index + 1)
        elif char in "aicrRbtTv:":
            # Text, a file read, or a label to the end of the line (GNU: or a `;`).
            stop = index + 1
            while stop < end and script[stop] != "\n" and (char in "aicrR" or script[stop] != ";"):
                stop += 1
            index = stop
        elif char in _SED_SIMPLE:
            index += 1
        else:
            state.flag(f"a sed script this analysis cannot read ({script!r})")
            return


# --- awk -----------------------------------------------------------------------------

_AWK_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')
_AWK_REGEX = re.compile(r"(^|[~(,!{;&|]\s*)/(?:[^/\\\n]|\\.)*/")


def _awk(args: list[Word], state: State) -> None:
    parsed = parse_options(
        args,
        "fvFiEel",
        {"--file", "--assign", "--field-separator", "--include", "--exec", "--source", "--load"},
        permute=False,
    )
    includes = parsed.values("-i", "--include")
    in_place = any(i.removesuffix(".awk") == "inplace" for i in includes)
    sandbox = parsed.has("--sandbox", "-S")
    programs = parsed.values("-e", "--source")
    operands = parsed.operands
    if parsed.has("-f", "--file", "-E", "--exec"):
        if not sandbox:
            state.flag("awk runs a program file this analysis does not read")
    elif not programs and operands:
        programs, operands = [operands[0].text], operands[1:]
    if parsed.has("-l", "--load") or any(i.removesuffix(".awk") != "inplace" for i in includes):
        state.flag("awk loads an extension or a library this analysis does not read")
    if not sandbox:
        for program in programs:
            _awk_program(program, state)
    if in_place:
        for word in operands:
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", word.text):
                state.add(word.text, "write", word.dynamic)


def _awk_program(program: str, state: State) -> None:
    strings: list[str] = []

    def keep(match: re.Match[str]) -> str:
        strings.append(match.group(0)[1:-1])
        return f'"{len(strings) - 1}"'

    code = _AWK_STRING.sub(keep, program)
    # Regular expressions (`$1 ~ /a|b/`) are not pipes; a `/` after an operand divides.
    code = _AWK_REGEX.sub(lambda m: m.group(1) + "//", code)
    if "@include" in code or "@load" in code:
        state.flag("awk @include/@load reads code this analysis does not see")
    if re.search(r"\bsystem\s*\(", code) or re.search(r"(?<!\|)\|(?!\|)", code):
        state.flag("awk runs a command (system() or a pipe)")
    for statement in re.finditer(r"\bprintf?\b([^;}\n]*)", code):
        depth = 0
        body = statement.group(1)
        for position, char in enumerate(body):
            depth += {"(": 1, ")": -1}.get(char, 0)
            if char == ">" and depth == 0:
                target = body[position + 1 :].lstrip(">").strip()
                literal = re.fullmatch(r'"(\d+)"', target)
                if literal:
                    state.add(strings[int(literal.group(1))], "write")
                else:
                    state.flag(f"awk prints to a computed file ({target!r})")
                break


# --- archives and copies of trees ----------------------------------------------------

_TAR_MODES = {"x": "extract", "c": "create", "t": "list", "r": "append", "u": "append",
              "A": "append", "d": "diff"}  # fmt: skip
_TAR_LONG_MODES = {
    "--extract": "extract", "--get": "extract", "--create": "create", "--list": "list",
    "--append": "append", "--update": "append", "--catenate": "append",
    "--concatenate": "append", "--delete": "append", "--diff": "diff", "--compare": "diff",
}  # fmt: skip
_TAR_SHORT_VALUES = "bCfFgHIKLNTVX"
_TAR_LONG_VALUES = {
    "--directory", "--file", "--files-from", "--exclude-from", "--exclude", "--transform",
    "--xform", "--owner", "--group", "--mode", "--mtime", "--newer", "--after-date",
    "--format", "--use-compress-program", "--to-command", "--listed-incremental", "--label",
    "--blocking-factor", "--record-size", "--tape-length", "--info-script",
    "--new-volume-script", "--checkpoint-action", "--index-file", "--suffix",
    "--strip-components", "--starting-file", "--volno-file", "--rsh-command",
}  # fmt: skip
_COMPRESSORS = {"gzip", "bzip2", "xz", "zstd", "lz4", "lzip", "lzma", "lzop", "pigz", "pbzip2"}


def _tar(args: list[Word], state: State) -> None:
    words = list(args)
    if words and not words[0].text.startswith("-") and re.match(r"^[A-Za-z]+$", words[0].text):
        # Old style: `tar xzf a.tar -C dir`; each letter that takes a value takes the next
        # word, in order.
        letters = words[0].text
        converted = [Word("-" + letter) for letter in letters]
        rest = words[1:]
        merged: list[Word] = []
        for option in converted:
            merged.append(option)
            if option.text[1] in _TAR_SHORT_VALUES and rest:
                merged.append(rest.pop(0))
        words = merged + rest
    parsed = parse_options(words, _TAR_SHORT_VALUES, _TAR_LONG_VALUES)
    modes = {_TAR_MODES[n[1]] for n in parsed.names if len(n) == 2 and n[1] in _TAR_MODES}
    modes |= {_TAR_LONG_MODES[n] for n in parsed.names if n in _TAR_LONG_MODES}
    for name in ("--to-command", "--info-script", "-F", "--new-volume-script", "--rsh-command"):
        if parsed.has(name):
            state.flag(f"tar {name} runs a program")
    if any("exec" in v for v in parsed.values("--checkpoint-action")):
        state.flag("tar --checkpoint-action=exec runs a program")
    for program in parsed.values("-I", "--use-compress-program"):
        parts = program.split()
        if not parts or posixpath.basename(parts[0]) not in _COMPRESSORS:
            state.flag(f"tar runs the compressor {program!r}")
    for name in ("-g", "--listed-incremental", "--index-file", "--volno-file"):
        for value in parsed.values(name):
            state.add(value, "write")
    archive = parsed.value("-f", "--file")
    if modes & {"create", "append"} and archive not in (None, "-"):
        state.add(archive or "", "write")
    if "create" in modes and parsed.has("--remove-files"):
        for word in parsed.operands:
            state.add(word.text, "delete", word.dynamic)
    if "extract" not in modes or parsed.has("-O", "--to-stdout"):
        return
    if parsed.has("-P", "--absolute-names"):
        state.flag("tar -P extracts to the absolute paths inside the archive")
    directories = parsed.values("-C", "--directory") or ["."]
    for directory in directories:
        state.add(directory, "extract")
        for member in parsed.operands:
            state.add(posixpath.join(directory, member.text), "write", member.dynamic)


def _unzip(args: list[Word], state: State) -> None:
    parsed = parse_options(args, "dxP")
    if parsed.has("-l", "-v", "-t", "-p", "-c", "-z", "-Z", "--help", "-h"):
        return
    if parsed.has("-:", "-^"):
        state.flag("unzip -: extracts paths with ../ in them")
    directory = parsed.value("-d") or "."
    state.add(directory, "extract")
    for member in parsed.operands[1:]:
        state.add(posixpath.join(directory, member.text), "write", member.dynamic)


def _zip(args: list[Word], state: State) -> None:
    parsed = parse_options(args, "bntO", {"--output-file", "--temp-path", "--suffixes"})
    operands = parsed.operands
    if not operands:
        return
    output = parsed.value("-O", "--output-file")
    state.add(output if output is not None else operands[0].text, "write", operands[0].dynamic)
    if parsed.has("-m", "--move"):
        for word in operands[1:]:
            state.add(word.text, "delete", word.dynamic)


_RSYNC_LONG_VALUES = {
    "--rsh", "--rsync-path", "--backup-dir", "--suffix", "--temp-dir", "--partial-dir",
    "--log-file", "--write-batch", "--only-write-batch", "--read-batch", "--files-from",
    "--include", "--exclude", "--include-from", "--exclude-from", "--filter", "--chmod",
    "--chown", "--compare-dest", "--copy-dest", "--link-dest", "--max-size", "--min-size",
    "--timeout", "--port", "--password-file", "--out-format", "--log-file-format",
    "--block-size", "--bwlimit", "--usermap", "--groupmap", "--compress-choice",
    "--checksum-choice", "--modify-window", "--max-delete", "--sockopts", "--outbuf",
}  # fmt: skip


def _rsync(args: list[Word], state: State) -> None:
    parsed = parse_options(args, "eBfTM", _RSYNC_LONG_VALUES)
    for name in ("-e", "--rsh", "--rsync-path"):
        if parsed.has(name):
            state.flag(f"rsync {name} runs a program")
    for name in ("--log-file", "--write-batch", "--only-write-batch", "--backup-dir",
                 "--partial-dir", "--temp-dir", "-T"):  # fmt: skip
        for value in parsed.values(name):
            state.add(value, "write")
    operands = parsed.operands
    if len(operands) < 2:
        return  # one operand lists it
    destination, sources = operands[-1], operands[:-1]
    if re.match(r"^[^/]*:", destination.text) or destination.text.startswith("rsync://"):
        state.flag("rsync writes to another host")
        return
    recursive = parsed.has("-r", "-a", "--recursive", "--archive", "-R", "--relative")
    _into(destination, sources, "extract" if recursive else "write", state)
    if parsed.has("--remove-source-files"):
        for word in sources:
            state.add(word.text, "delete", word.dynamic)


def _cpio(args: list[Word], state: State) -> None:
    parsed = parse_options(args, "DFOIEHRM", {"--directory", "--file"})
    if parsed.has("-i", "--extract", "-p", "--pass-through"):
        if parsed.has("-t", "--list"):
            return
        directory = parsed.value("-D", "--directory")
        if parsed.has("-p", "--pass-through") and parsed.operands:
            directory = parsed.operands[0].text
        state.add(directory or ".", "extract")
    for value in parsed.values("-O", "-F", "--file"):
        if parsed.has("-o", "--create"):
            state.add(value, "write")


# --- compressors, downloads, sort ----------------------------------------------------


def _compressor(args: list[Word], state: State) -> None:
    parsed = parse_options(args, "oS", {"--output", "--suffix"})
    if parsed.has("-c", "--stdout", "--to-stdout", "-l", "--list", "-t", "--test", "-h",
                  "--help", "-V", "--version"):  # fmt: skip
        return
    for value in parsed.values("-o", "--output"):
        state.add(value, "write")
    for word in parsed.operands:
        if word.text != "-":
            state.add(word.text, "write", word.dynamic)


_CURL_WRITES = {"-o", "--output", "-D", "--dump-header", "-c", "--cookie-jar", "--trace",
                "--trace-ascii", "--stderr", "--libcurl", "--etag-save", "--hsts",
                "--alt-svc"}  # fmt: skip


def _curl(args: list[Word], state: State) -> None:
    parsed = parse_options(
        args,
        "oDcKTdFHuUxXAebmrwCEyYztQ",
        {*_CURL_WRITES, "--config", "--data", "--data-binary", "--data-raw", "--data-urlencode",
         "--header", "--user", "--request", "--form", "--url", "--upload-file", "--output-dir",
         "--user-agent", "--referer", "--cookie", "--max-time", "--proxy", "--write-out",
         "--json", "--cert", "--key", "--cacert", "--connect-timeout", "--retry"},
    )  # fmt: skip
    for name, value in parsed.given:
        if name in _CURL_WRITES and value not in (None, "-"):
            state.add(value or "", "write")
    if parsed.has("-K", "--config"):
        state.flag("curl -K reads options from a file")
    if parsed.has("-O", "--remote-name", "--remote-name-all", "-J", "--remote-header-name"):
        state.add(parsed.value("--output-dir") or ".", "extract")


def _wget(args: list[Word], state: State) -> None:
    parsed = parse_options(
        args,
        "OoaPiBeTtwUQ",
        {"--output-document", "--output-file", "--append-output", "--directory-prefix",
         "--input-file", "--execute", "--header", "--user", "--password", "--tries",
         "--timeout", "--wait", "--user-agent", "--post-data", "--post-file", "--body-file",
         "--method", "--base", "--quota"},
    )  # fmt: skip
    for name in ("-o", "--output-file", "-a", "--append-output"):
        for value in parsed.values(name):
            state.add(value, "write")
    if parsed.has("-e", "--execute"):
        state.flag("wget -e runs wgetrc commands")
    if parsed.has("--spider"):
        return
    document = parsed.value("-O", "--output-document")
    if document is not None:
        if document != "-":
            state.add(document, "write")
        return
    state.add(parsed.value("-P", "--directory-prefix") or ".", "extract")


def _sort(args: list[Word], state: State) -> None:
    parsed = parse_options(
        args, "okStT", {"--output", "--key", "--buffer-size", "--field-separator",
                        "--temporary-directory", "--files0-from", "--parallel"}
    )  # fmt: skip
    for value in parsed.values("-o", "--output"):
        state.add(value, "write")


def _uniq(args: list[Word], state: State) -> None:
    parsed = parse_options(args, "fsw", {"--skip-fields", "--skip-chars", "--check-chars"})
    if len(parsed.operands) >= 2:
        state.add(parsed.operands[1].text, "write", parsed.operands[1].dynamic)


def _split(args: list[Word], state: State) -> None:
    parsed = parse_options(
        args, "abClnt", {"--suffix-length", "--bytes", "--line-bytes", "--lines", "--number",
                         "--additional-suffix", "--separator", "--filter"}
    )  # fmt: skip
    if parsed.has("--filter"):
        state.flag("split --filter runs a command")
    prefix = parsed.operands[1] if len(parsed.operands) >= 2 else Word("x")
    state.add(prefix.text, "write", prefix.dynamic)


# --- editors -------------------------------------------------------------------------


def _editor(name: str) -> Handler:
    def handle(args: list[Word], state: State) -> None:
        parsed = parse_options(
            args, "cSsuiUTWwrtq", {"--cmd", "--servername", "--remote", "--startuptime"}
        )
        if parsed.has("--version", "-h", "--help"):
            return
        for word in parsed.operands:
            if not word.text.startswith("+") and word.text != "-":
                state.add(word.text, "write", word.dynamic)
        for value in parsed.values("-W", "-w"):
            state.add(value, "write")
        # Its commands (`-c`, `+cmd`, a script, its input) can write any file and run any
        # program: `:w other`, `:!cmd`.
        state.flag(f"{name} commands can write any file")

    return handle


HANDLERS: dict[str, Handler] = {
    "tee": _all("write"),
    "sed": _sed,
    "gsed": _sed,
    "mv": _copy(move=True),
    "cp": _copy(move=False),
    "rm": _all("delete"),
    "rmdir": _all("delete"),
    "unlink": _all("delete"),
    "shred": _all("delete", "ns", {"--iterations", "--size", "--random-source"}),
    "mkdir": _all("write", "m", {"--mode"}),
    "truncate": _all("write", "sr", {"--size", "--reference"}),
    "touch": _all("write", "rdt", {"--reference", "--date"}),
    "mkfifo": _all("write", "m", {"--mode"}),
    "dd": _dd,
    "ln": _ln,
    "install": _install,
    "chmod": _mode,
    "chown": _mode,
    "chgrp": _mode,
    "chattr": _mode,
    "setfacl": _mode,
    "scp": _scp,
    "sponge": _all("write"),
    "patch": _patch,
    "awk": _awk,
    "gawk": _awk,
    "mawk": _awk,
    "nawk": _awk,
    "tar": _tar,
    "bsdtar": _tar,
    "gtar": _tar,
    "unzip": _unzip,
    "zip": _zip,
    "rsync": _rsync,
    "cpio": _cpio,
    "curl": _curl,
    "wget": _wget,
    "sort": _sort,
    "uniq": _uniq,
    "split": _split,
    **{name: _compressor for name in ("gzip", "gunzip", "bzip2", "bunzip2", "xz", "unxz",
                                       "lzma", "unlzma", "zstd", "unzstd", "lz4", "brotli",
                                       "compress", "uncompress", "pigz")},
    **{name: _editor(name) for name in ("vi", "vim", "nvim", "ex", "view", "gvim", "ed", "red",
                                        "emacs", "nano")},
}  # fmt: skip
