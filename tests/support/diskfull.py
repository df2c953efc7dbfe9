"""A full disk without root: the real write runs in a forked child whose files cannot grow.

`RLIMIT_FSIZE` caps the size any file of the process may grow to; with SIGXFSZ ignored, a write or
`fallocate` past it fails with EFBIG, which the product treats like ENOSPC ("the disk is full").
Only the child is limited, so this test process (its SQLite database, its logs) writes as usual.
The child inherits the parent's memory (a model, a pack writer's arguments) and sends back only
its result or its exception.
"""
from __future__ import annotations

import os
import pickle
import resource
import signal


def with_file_size_limit(limit: int | None, fn, *args, **kwargs):
    """`fn(*args, **kwargs)` in a child whose files cannot grow past `limit` bytes; its result, or
    its exception raised here."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no return from here
        status = 0
        try:
            os.close(read_end)
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            if limit is not None:  # None: only the isolation of a child (a crash fails the test, not pytest)
                resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
            try:
                outcome = ("result", fn(*args, **kwargs))
            except BaseException as exc:  # noqa: BLE001 - sent to the parent as it is
                outcome = ("error", exc)
            try:
                payload = pickle.dumps(outcome)
            except Exception as exc:  # an exception that does not pickle: its text
                payload = pickle.dumps(("error", RuntimeError(f"{type(outcome[1]).__name__}: {outcome[1]} ({exc})")))
            with os.fdopen(write_end, "wb") as out:
                out.write(payload)
        except BaseException:
            status = 1
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as source:
        payload = source.read()
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        raise AssertionError(f"the child died of signal {os.WTERMSIG(status)}")
    if not payload:
        raise AssertionError(f"the child exited with {os.waitstatus_to_exitcode(status)} and sent nothing")
    kind, value = pickle.loads(payload)
    if kind == "error":
        raise value
    return value
