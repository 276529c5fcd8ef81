"""A set of outputs is renamed into place whole even when the signal lands on another thread."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from yiwu_credit.data import io as yio


class _Stop(Exception):
    pass


def test_a_sigterm_caught_by_another_thread_waits_for_the_whole_set(tmp_path, monkeypatch):
    """The kernel may hand SIGTERM to a worker thread (it is only blocked in the renaming thread):
    Python then runs the handler in the main thread at its next instruction, between two renames,
    unless the handler itself is held back. Either the old set or the new one, never a mix."""
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("old a", encoding="utf-8")
    b.write_text("old b", encoding="utf-8")
    real = os.replace
    go, sent = threading.Event(), threading.Event()

    def worker():                          # a thread started before the renames: SIGTERM not blocked in it
        go.wait()
        signal.pthread_kill(threading.get_ident(), signal.SIGTERM)
        sent.set()

    helper = threading.Thread(target=worker)
    helper.start()

    def replace(src, dst):
        real(src, dst)
        if not go.is_set():                # after the first rename: the signal arrives on the other thread
            go.set()
            sent.wait(5)

    def on_term(signum, frame):
        raise _Stop()

    old = signal.signal(signal.SIGTERM, on_term)
    monkeypatch.setattr(yio.os, "replace", replace)
    try:
        with pytest.raises(_Stop):
            yio.write_tables([("new a", a), ("new b", b)])
    finally:
        signal.signal(signal.SIGTERM, old)
        go.set()
        helper.join()
    assert (a.read_text("utf-8"), b.read_text("utf-8")) == ("new a", "new b")   # the whole new set
    assert not [f for f in tmp_path.iterdir() if f.name.endswith(".tmp")]
