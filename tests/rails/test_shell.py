"""Shell analysis for the guard: which paths a Bash command writes, and git push.

The decision table runs every command through `forbidden_writes` with the default
forbidden paths. Reading a forbidden file (`cat auth/token.py`) is allowed here on
purpose: this function looks only at writes; the diff check after every attempt is the
backstop for whatever it cannot see.
"""

from __future__ import annotations

import shlex

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentloop.rails.paths import ForbiddenPaths
from agentloop.rails.shell import ShellVerdict, Target, analyse, forbidden_writes
from agentloop.rails.shell_words import Word, decode_word, parse_options

DEFAULTS = ForbiddenPaths()

ALLOW = "allow"
PUSH = "push"
UNKNOWN = "unknown"
REFUSE = "refuse"  # git/gh/hub beyond reading: refused whatever it writes

# (command, expected): ALLOW, PUSH, REFUSE, UNKNOWN (targets that cannot be known: deny),
# or the forbidden path a denial must name.
CASES: list[tuple[str, str]] = [
    # plain writes and redirections
    ("echo x > auth/token.py", "auth/token.py"),
    ("echo x >> src/auth/login.py", "src/auth/login.py"),
    ("make &> .env", ".env"),
    ("pytest 2> payments/log.txt", "payments/log.txt"),
    ("echo x>auth/t.py", "auth/t.py"),
    ("echo x >| .github/workflows/ci.yml", ".github/workflows/ci.yml"),
    ("echo ok > src/app.py", ALLOW),
    ("pytest -q > /dev/null 2>&1", ALLOW),
    ("pytest > /tmp/out.txt", ALLOW),
    ("echo x > ../elsewhere.py", "../elsewhere.py"),
    # tee, sed -i, perl -i
    ("echo x | tee auth/token.py", "auth/token.py"),
    ("echo x | tee -a notes.txt billing/x.py", "billing/x.py"),
    ("echo x | tee notes.txt", ALLOW),
    ("sed -i 's/a/b/' auth/login.py", "auth/login.py"),
    ("sed -i.bak -e 's/a/b/' src/x.py migrations/0001.py", "migrations/0001.py"),
    ("sed 's/a/b/' auth/login.py > src/out.py", ALLOW),
    ("perl -pi -e 's/a/b/' payments/x.pl", "payments/x.pl"),
    # cp, mv, rm, touch, truncate, dd, ln, install, chmod
    ("cp src/x.py auth/x.py", "auth/x.py"),
    ("cp auth/x.py src/x.py", ALLOW),
    ("cp -t auth src/x.py", "auth"),
    ("mv auth/x.py src/x.py", "auth/x.py"),
    ("mv src/x.py billing/", "billing/"),
    ("rm -rf src/auth", "src/auth"),
    ("rm -f build/out.o", ALLOW),
    ("rmdir db/migrate", "db/migrate"),
    ("touch src/delete_user.py", "src/delete_user.py"),
    ("truncate -s 0 .env.local", ".env.local"),
    ("dd if=/dev/zero of=auth/blob bs=1 count=1", "auth/blob"),
    ("dd if=auth/blob of=/tmp/copy", ALLOW),
    ("ln -s /etc/passwd auth/link", "auth/link"),
    ("ln -s src/x.py link.py", ALLOW),
    ("install -m 644 src/x auth/x", "auth/x"),
    ("chmod +x auth/run.sh", "auth/run.sh"),
    ("chmod -x scripts/run.sh", ALLOW),
    ("chown me: payments/x", "payments/x"),
    ("cat > agentloop.yaml <<EOF\nmax_attempts: 99\nEOF", "agentloop.yaml"),
    ("cat <<'EOF' > src/notes.txt\nrm auth/x\nEOF", ALLOW),
    # nested shells, lists, pipelines, subshells, substitutions
    ("bash -c 'echo x > auth/token.py'", "auth/token.py"),
    ('sh -c "rm -f billing/invoice.py"', "billing/invoice.py"),
    ("bash -lc \"sh -c 'touch .claude/settings.json'\"", ".claude/settings.json"),
    ("bash <<EOF\nrm auth/x.py\nEOF", "auth/x.py"),
    ("true && (cd src; echo x > y.py) || rm auth/z", "auth/z"),
    ("cd auth && echo x > token.py", "auth/token.py"),
    ("cd src && echo x > token.py", ALLOW),
    ("echo $(rm auth/x) done", "auth/x"),
    ("for f in a b; do touch auth/$f; done", "auth/$f"),
    ("sudo rm auth/x", "auth/x"),
    ("env FOO=1 timeout 5 rm auth/x", "auth/x"),
    ("find . -name '*.pyc' -delete", UNKNOWN),
    ("find . -name '*.py' -exec grep -l TODO {} +", ALLOW),
    ("ls | xargs rm", UNKNOWN),
    ("[[ -f x ]] && echo y > auth/z", "auth/z"),
    # python -c
    ("python -c \"open('auth/token.py', 'w').write('x')\"", "auth/token.py"),
    ("python3 -c \"open(file='src/x.py', mode='a').write('x')\"", ALLOW),
    ("python -c \"print(open('auth/token.py').read())\"", ALLOW),
    ("python -c \"from pathlib import Path; Path('.env').write_text('x')\"", ".env"),
    ("python -c \"import os; os.remove('payments/x.py')\"", "payments/x.py"),
    ("python -c \"import sys; open(sys.argv[1], 'w')\" auth/x", UNKNOWN),
    ("python -c \"import os; os.system('rm -rf auth')\"", UNKNOWN),
    ("python - <<EOF\nopen('auth/t.py', 'w').write('x')\nEOF", "auth/t.py"),
    # git
    ("git push", PUSH),
    ("git push origin HEAD:main --force", PUSH),
    ("git -C ../other push", PUSH),
    ("command git push", PUSH),
    ("bash -c 'git push -u origin feature'", PUSH),
    ("git commit -m 'push the fix'", REFUSE),
    ("git checkout -- auth/login.py", REFUSE),
    ("git checkout HEAD~1 -- payments/x.py", REFUSE),
    ("git restore auth/login.py", REFUSE),
    ("git restore src/x.py", REFUSE),
    ("git apply fix.patch", REFUSE),
    ("patch -p1 < fix.patch", UNKNOWN),
    ("git stash pop", REFUSE),
    ("cat script.sh | sh", UNKNOWN),
    ("git status && git diff --stat", ALLOW),
    # variables and globs
    ("echo x > $OUT", UNKNOWN),
    ('rm -f "$HOME/.cache/x"', UNKNOWN),
    ("rm auth/*", "auth/*"),
    ("rm src/*.pyc", ALLOW),
    ("echo x > ~/.bashrc", "~/.bashrc"),
    # reads and mentions: allowed
    ("cat auth/token.py", ALLOW),
    ("pytest tests/test_auth.py -q", ALLOW),
    ("ls -la auth/", ALLOW),
    ("grep -r auth src", ALLOW),
    ("echo auth/x", ALLOW),
    ("diff auth/a.py auth/b.py < /dev/null", ALLOW),
    # unparseable: fail closed
    ("echo 'unterminated > auth/x", UNKNOWN),
]


def _decision(reasons: list[str], verdict: ShellVerdict) -> str:
    if not reasons:
        return ALLOW
    if verdict.pushes:
        return PUSH
    if verdict.refusals and all(r in verdict.refusals for r in reasons):
        return REFUSE
    if verdict.unknown_targets and all(r.startswith("cannot tell") for r in reasons):
        return UNKNOWN
    return "deny"


def test_the_table_is_large_enough() -> None:
    assert len(CASES) >= 45
    assert len({c for c, _ in CASES}) == len(CASES)


@pytest.mark.parametrize(("command", "expected"), CASES, ids=[c for c, _ in CASES])
def test_decision(command: str, expected: str) -> None:
    verdict = analyse(command)
    reasons = forbidden_writes(command, DEFAULTS)
    decision = _decision(reasons, verdict)
    if expected in (ALLOW, PUSH, REFUSE, UNKNOWN):
        assert decision == expected, (reasons, verdict)
    else:
        assert reasons, verdict
        assert any(expected in reason for reason in reasons), (reasons, verdict)


def test_verdict_names_targets_and_actions() -> None:
    verdict = analyse("cp a b && mv c d; rm e; ln -s f g; echo > h")
    assert verdict.targets == (
        Target("b", "write"),
        Target("b/a", "write"),  # when b is a directory
        Target("d", "move"),
        Target("d/c", "move"),
        Target("c", "move"),
        Target("e", "delete"),
        Target("g", "link"),
        Target("f", "point"),  # what g points at
        Target("h", "write"),
    )
    assert verdict.paths == ("b", "b/a", "d", "d/c", "c", "e", "g", "f", "h")
    assert not verdict.pushes
    assert not verdict.unknown_targets
    assert verdict.parser == "bashlex"


def test_fallback_scanner_is_reported() -> None:
    verdict = analyse("[[ -f x ]] && echo y > z")
    assert verdict.parser == "shlex"
    assert verdict.paths == ("z",)


def test_unparseable_fails_closed() -> None:
    verdict = analyse("echo 'open")
    assert verdict.unknown_targets
    assert verdict.parser == "none"


def test_absolute_paths_inside_the_repository() -> None:
    forbidden = ForbiddenPaths(root="/repo")
    assert forbidden_writes("echo x > /repo/auth/t.py", forbidden)
    assert not forbidden_writes("echo x > /repo/src/t.py", forbidden)
    assert forbidden_writes("echo x > /etc/passwd", forbidden)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_analyse_never_raises(command: str) -> None:
    verdict = analyse(command)
    assert isinstance(verdict, ShellVerdict)
    forbidden_writes(command, DEFAULTS)


SHELL_WORDS = ["echo", "rm", "-rf", "auth/x", ">", ">>", "|", "&&", ";", "(", ")", "'", '"',
               "bash", "-c", "$X", "<<EOF", "\n", "EOF", "python", "open('a','w')", "git",
               "push", "$'", "\\x70", "<<'EOF'", "add", "-C", "tar", "xf", "sed", "w",
               "node", "-e", "awk", "-i", "inplace"]  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(SHELL_WORDS), max_size=20))
def test_analyse_never_raises_on_shell_like_text(parts: list[str]) -> None:
    assert isinstance(analyse(" ".join(parts)), ShellVerdict)


# --- words as Bash runs them -------------------------------------------------------------

WORDS: list[tuple[str, str, bool]] = [
    ("push", "push", False),
    ("$'push'", "push", False),
    ("$'\\x70ush'", "push", False),
    ("$'\\160ush'", "push", False),
    ("$'\\u0070ush'", "push", False),
    ("$'it\\'s'", "it's", False),
    ("$'a\\nb'", "a\nb", False),
    ('$"push"', "push", False),
    ("'a'\"b\"c", "abc", False),
    ("p''ush", "push", False),
    ('"a\\$b"', "a$b", False),
    ('"\\x74"', "\\x74", False),
    ("a\\ b", "a b", False),
    ('"$HOME/x"', "$HOME/x", True),
    ("${OUT:-x}", "${OUT:-x}", True),
    ("$(echo x)", "$(echo x)", True),
    ("`echo x`", "`echo x`", True),
    ("x$1", "x$1", True),
    ("'$HOME'", "$HOME", False),
    ("\"$'x'\"", "$'x'", False),  # no ANSI-C quoting inside double quotes
]


@pytest.mark.parametrize(("raw", "text", "dynamic"), WORDS, ids=[w for w, _, _ in WORDS])
def test_words_are_decoded_as_bash_does(raw: str, text: str, dynamic: bool) -> None:
    assert decode_word(raw) == (text, dynamic)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_decode_word_never_raises(raw: str) -> None:
    text, dynamic = decode_word(raw)
    assert isinstance(text, str)
    assert isinstance(dynamic, bool)


def test_gnu_options_are_parsed_like_getopt() -> None:
    words = [Word(w) for w in ["-rt", "auth", "--suffix=~", "--target-directory", "d", "x"]]
    parsed = parse_options(words, "t", {"--target-directory"})
    assert parsed.given == [("-r", None), ("-t", "auth"), ("--suffix", "~"),
                            ("--target-directory", "d")]  # fmt: skip
    assert [w.text for w in parsed.operands] == ["x"]
    attached = parse_options([Word("-tauth"), Word("--"), Word("-x")], "t")
    assert attached.value("-t") == "auth"
    assert [w.text for w in attached.operands] == ["-x"]
    assert attached.dashdash
    first = parse_options([Word("prog"), Word("-x")], permute=False)
    assert [w.text for w in first.operands] == ["prog", "-x"]


# --- sed scripts --------------------------------------------------------------------------

SED: list[tuple[str, tuple[str, ...], bool]] = [
    ("s/a/b/w out.txt", ("out.txt",), False),
    ("s|a|b|gw out.txt", ("out.txt",), False),
    ("s/a\\/w/b/", (), False),  # an escaped delimiter, not a `w`
    ("/x/w out.txt", ("out.txt",), False),
    ("1,3W out.txt", ("out.txt",), False),
    ("$!N;P;D", (), False),
    ("y/abc/xyz/", (), False),
    (":a;N;ba", (), False),
    ("1{p;q}", (), False),
    ("a hello w world", (), False),  # text to append, not a command
    ("r other.txt", (), False),
    ("# w x", (), False),
    ("e ls", (), True),
    ("s/a/b/e", (), True),
    ("1~2d;s/x/y/2w out", ("out",), False),
]


@pytest.mark.parametrize(("script", "targets", "unknown"), SED, ids=[s for s, _, _ in SED])
def test_sed_scripts_name_what_they_write(
    script: str, targets: tuple[str, ...], unknown: bool
) -> None:
    verdict = analyse(f"sed {shlex.quote(script)} file")
    assert verdict.paths == targets
    assert verdict.unknown_targets is unknown


def test_sed_sandbox_writes_nothing() -> None:
    verdict = analyse("sed --sandbox 's/a/b/w auth/x; e rm x' f")
    assert not verdict.targets
    assert not verdict.unknown_targets


# --- the rest of the verdict ----------------------------------------------------------------


def test_a_quoted_heredoc_delimiter_is_parsed() -> None:
    # bashlex alone fails on `<<'EOF'`; the shlex fallback would not see the body.
    verdict = analyse("python3 - <<'EOF' > /tmp/log\nopen('auth/x', 'w')\nEOF")
    assert verdict.parser == "bashlex"
    assert verdict.paths == ("/tmp/log", "auth/x")


def test_a_session_refuses_git_writes_and_names_the_commit_tool() -> None:
    verdict = analyse("git add src/a.py && git checkout -- src/b.py", interactive=True)
    assert len(verdict.refusals) == 2
    assert all("mcp__agentloop__commit" in r for r in verdict.refusals)
    assert "mcp__agentloop__commit" not in " ".join(analyse("git add src/a.py").refusals)


def test_mentions_hold_every_literal_for_the_secret_check() -> None:
    verdict = analyse("f=.env; cat <<EOF | node -e \"x('ab\\x63')\"\nbody\nEOF")
    assert {".env", "body", "abc"} <= set(verdict.mentions)


def test_targets_are_judged_where_their_symlinks_lead() -> None:
    forbidden = ForbiddenPaths(root="/repo")

    def resolve(path: str) -> str:
        return path.replace("/repo/src/keys", "/repo/auth")

    reasons = forbidden_writes("echo x > src/keys/t.py", forbidden, resolve=resolve)
    assert reasons == [
        "it would write auth/t.py, a forbidden path (**/auth/**) "
        "(src/keys/t.py leads there through a symbolic link)"
    ]
    assert not forbidden_writes("echo x > src/t.py", forbidden, resolve=resolve)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(SHELL_WORDS), max_size=20))
def test_session_analysis_never_raises(parts: list[str]) -> None:
    assert isinstance(analyse(" ".join(parts), interactive=True), ShellVerdict)
