"""A pytest plugin agentloop loads (with -p) into the runs it starts.

It appends one JSON line per event to $AGENTLOOP_PROBE_FILE and flushes at once, so when
agentloop has to kill a hanging suite it still knows which tests had finished, how the
failed ones failed, and which test was running when time ran out. It also sees what no
report keeps: each failed subtest (`unittest`'s `subTest`, pytest's `subtests` fixture)
with its message and crash site, where pytest-json-report keeps one entry per test and
JUnit XML the first failure. Standard library only: it runs inside the user's
interpreter, whatever its version.
"""

import json
import os

_PATH = os.environ.get("AGENTLOOP_PROBE_FILE")


def _emit(record):
    if not _PATH:
        return
    with open(_PATH, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
        handle.flush()


def pytest_collection_finish(session):
    # What was to run: a run stopped early (a collection error, a kill) can say how many
    # tests never ran.
    _emit({"event": "collected", "count": len(session.items)})


def pytest_runtest_logstart(nodeid, location):
    _emit({"event": "start", "nodeid": nodeid, "file": location[0], "line": location[1]})


def _fileloc(loc):
    lineno = getattr(loc, "lineno", None)
    return {
        "path": str(getattr(loc, "path", "")),
        "lineno": lineno if isinstance(lineno, int) else None,
        "message": str(getattr(loc, "message", "")),
    }


def _crash(longrepr):
    """The crash and traceback entries, shaped as pytest-json-report shapes them."""
    crash = getattr(longrepr, "reprcrash", None)
    if crash is None:
        return {}
    found = {"crash": _fileloc(crash)}
    entries = getattr(getattr(longrepr, "reprtraceback", None), "reprentries", None) or ()
    found["traceback"] = [
        _fileloc(entry.reprfileloc)
        for entry in entries
        if getattr(entry, "reprfileloc", None) is not None
    ]
    return found


def _subtest(report):
    """The subtest a report is about (pytest >= 9, or the pytest-subtests plugin), else None."""
    context = getattr(report, "context", None)
    if context is None or not hasattr(context, "kwargs"):
        return None
    for method in ("_sub_test_description", "sub_test_description"):  # pytest 9, plugin
        try:
            return str(getattr(report, method)())
        except Exception:
            pass
    msg = getattr(context, "msg", None)
    parts = [] if msg is None else [f"[{msg}]"]
    kwargs = dict(context.kwargs or {})
    if kwargs:
        parts.append("({})".format(", ".join(f"{k}={v!r}" for k, v in kwargs.items())))
    return " ".join(parts) or "(<subtest>)"


def pytest_runtest_logreport(report):
    if not report.failed:
        return
    record = {
        "event": "failed",
        "nodeid": report.nodeid,
        "when": report.when,
        "longrepr": str(report.longrepr)[:20000],
    }
    try:
        subtest = _subtest(report)
        record.update(_crash(report.longrepr))
        location = getattr(report, "location", None) or ()
        if len(location) >= 2:
            record["file"], record["line"] = str(location[0]), location[1]
    except Exception:
        subtest = None  # the details are a bonus; the failure itself must be recorded
    if subtest is not None:
        # Still a "failed" event of the test's node id: whoever asks whether the test
        # passed gets the right answer; the description tells subtests apart.
        record["subtest"] = subtest
    _emit(record)


def pytest_runtest_logfinish(nodeid, location):
    _emit({"event": "finish", "nodeid": nodeid})


def pytest_collectreport(report):
    if report.failed:
        _emit(
            {
                "event": "collect_failed",
                "nodeid": report.nodeid,
                "longrepr": str(report.longrepr)[:20000],
            }
        )
