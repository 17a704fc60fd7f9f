from __future__ import annotations

import time
from pathlib import Path

import pytest

from agentloop import proc
from agentloop.testing.repos import process_alive


def test_timeout_kills_the_whole_process_group_and_keeps_partial_output(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild"
    script = f"echo started; sleep 300 & echo $! > {pid_file}; wait"
    start = time.monotonic()
    done = proc.run(script, cwd=tmp_path, timeout=1)
    assert time.monotonic() - start < 8
    assert done.timed_out
    assert not done.ok
    assert done.stdout.strip() == "started"
    grandchild = int(pid_file.read_text())
    time.sleep(0.1)
    assert not process_alive(grandchild)


def test_output_that_is_not_utf8_is_decoded_leniently(tmp_path: Path) -> None:
    done = proc.run(["printf", "caf\\351\\n"], cwd=tmp_path, timeout=10)
    assert done.ok
    assert done.stdout == "caf\ufffd\n"


def test_a_missing_program_is_reported_not_raised_as_oserror(tmp_path: Path) -> None:
    with pytest.raises(proc.CommandNotFound):
        proc.run(["definitely-not-a-program-xyz"], cwd=tmp_path, timeout=10)
    done = proc.run("definitely-not-a-program-xyz", cwd=tmp_path, timeout=10)
    assert done.returncode == 127


def test_stdin_is_closed(tmp_path: Path) -> None:
    done = proc.run("cat", cwd=tmp_path, timeout=5)
    assert done.ok
    assert done.stdout == ""
