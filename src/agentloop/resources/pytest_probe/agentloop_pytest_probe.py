"""A pytest plugin agentloop loads (with -p) into the runs it starts.

It appends one JSON line per event to $AGENTLOOP_PROBE_FILE and flushes at once, so when
agentloop has to kill a hanging suite it still knows which tests had finished, how the
failed ones failed, and which test was running when time ran out. Standard library only:
it runs inside the user's interpreter, whatever its version.
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


def pytest_runtest_logreport(report):
    if report.failed:
        _emit(
            {
                "event": "failed",
                "nodeid": report.nodeid,
                "when": report.when,
                "longrepr": str(report.longrepr)[:20000],
            }
        )


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
