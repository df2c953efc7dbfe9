"""The decode pool: the same pack as the in-process path, and it starts inside a daemonic process
(a Celery prefork child), where multiprocessing refuses to start children by default."""
from __future__ import annotations

import io
import multiprocessing
import os
import threading
import zipfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workers.engine.ingest import pool as ingest_pool
from workers.engine.ingest.pack import open_pack
from workers.engine.ingest.pipeline import PackOptions, build_pack


def write_dataset(path: Path, *, classes=("cat", "dog", "eel"), per_class=30, extra=None) -> Path:
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(path, "w") as zf:
        for name in classes:
            for i in range(per_class):
                out = io.BytesIO()
                Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(out, "PNG")
                zf.writestr(f"{name}/{i:03d}.png", out.getvalue())
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return path


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_the_pool_gives_the_same_pack_as_the_inline_path(tmp_path, monkeypatch, method):
    monkeypatch.setattr(ingest_pool, "start_method", lambda: method)
    source = write_dataset(tmp_path / "up.zip", extra={"cat/bad.png": b"not a png"})
    inline = open_pack(build_pack(source, tmp_path / "inline", PackOptions(), processes=1).pack_path)
    pooled = open_pack(build_pack(source, tmp_path / "pooled", PackOptions(), processes=2).pack_path)
    assert len(pooled) == 90 and inline.names == pooled.names
    assert np.array_equal(inline.images, pooled.images) and np.array_equal(inline.thumbs, pooled.thumbs)
    assert np.array_equal(inline.splits, pooled.splits) and np.array_equal(inline.labels, pooled.labels)
    assert inline.meta["mean"] == pooled.meta["mean"] and inline.health == pooled.health
    assert [c["name"] for c in pooled.health["corrupt"]] == ["cat/bad.png"]


def test_the_start_method_forks_only_without_other_threads(monkeypatch):
    # Listed, not started: the full suite runs threads of its own (a live server, a browser driver).
    me = threading.current_thread()

    class Other:
        pass

    class Heartbeat:
        fork_safe = True

    monkeypatch.setattr(threading, "enumerate", lambda: [me])
    assert ingest_pool.start_method() == "fork"
    monkeypatch.setattr(threading, "enumerate", lambda: [me, Heartbeat()])
    assert ingest_pool.start_method() == "fork"  # a thread that says it holds nothing a fork needs
    monkeypatch.setattr(threading, "enumerate", lambda: [me, Heartbeat(), Other()])
    assert ingest_pool.start_method() == "spawn"


def _ingest_as_a_daemon(source: str, out: str, method: str, answers) -> None:
    ingest_pool.start_method = lambda: method  # this process is a throwaway copy
    me = multiprocessing.current_process()
    try:
        try:  # the restriction is real here: a plain pool cannot start
            executor = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
            try:
                executor.submit(int).result()
                plain = "started"
            finally:
                executor.shutdown(wait=False, cancel_futures=True)
        except AssertionError as exc:
            plain = str(exc)
        report = build_pack(source, out, PackOptions(), processes=2)
        answers.put((me.daemon, plain, report.num_images, me.daemon))
    except BaseException as exc:  # reported to the test rather than lost with the child
        answers.put((me.daemon, "error", repr(exc), me.daemon))


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_build_pack_runs_its_pool_inside_a_daemonic_process(tmp_path, method):
    source = write_dataset(tmp_path / "up.zip")
    context = multiprocessing.get_context("fork")  # Celery's prefork pool forks its children
    answers = context.Queue()
    child = context.Process(target=_ingest_as_a_daemon, args=(str(source), str(tmp_path / "pack"), method, answers),
                            daemon=True)
    child.start()
    daemon_before, plain, images, daemon_after = answers.get(timeout=120)
    child.join(timeout=60)
    assert daemon_before is True and plain == "daemonic processes are not allowed to have children"
    assert images == 90, images
    assert daemon_after is True  # the flag is restored once the pool is gone
    assert child.exitcode == 0
    assert len(open_pack(tmp_path / "pack")) == 90


def test_a_worker_that_dies_fails_the_ingest_cleanly_instead_of_hanging(tmp_path, monkeypatch):
    from workers.engine.ingest import imaging
    from workers.engine.errors import IngestError

    real_open = imaging.open_image

    def crash_on_poison(data, **kw):  # forked workers inherit the patch
        if data.startswith(b"POISON"):
            os._exit(1)
        return real_open(data, **kw)

    monkeypatch.setattr(ingest_pool, "start_method", lambda: "fork")
    monkeypatch.setattr(imaging, "open_image", crash_on_poison)
    source = write_dataset(tmp_path / "up.zip", extra={"eel/zz.png": b"POISON"})
    with pytest.raises(IngestError, match="decoding process died"):
        build_pack(source, tmp_path / "pack", PackOptions(), processes=2)
    assert not (tmp_path / "pack").exists() and not (tmp_path / "pack.partial").exists()


def test_a_wrong_first_guess_restarts_the_pooled_decode_with_fresh_files(tmp_path):
    rng = np.random.default_rng(1)
    root = tmp_path / "data"
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(40):
            gray = rng.integers(0, 256, (10, 10), dtype=np.uint8)
            Image.fromarray(gray).save(root / c / f"{i:03d}.png")
    colour = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
    Image.fromarray(colour).save(root / "b" / "999.png")  # last: another size, and in colour
    report = build_pack(root, tmp_path / "pack", PackOptions(), processes=2)
    assert report.health["restarts"] >= 1
    assert (report.image_size, report.channels, report.num_images) == (224, 3, 81)
    pack = open_pack(report.pack_path)
    assert pack.images.shape == (81, 224, 224, 3) and pack.thumbs.shape == (81, 64, 64, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "pack"]


def test_rows_are_written_whole_when_writes_stop_short(tmp_path, monkeypatch):
    real = os.pwritev

    def short(fd, buffers, offset):  # at most 7 bytes per call, as a signal or full disk may cause
        first = bytes(buffers[0])[:7]
        return real(fd, [first], offset)

    monkeypatch.setattr(ingest_pool.os, "pwritev", short)
    path = tmp_path / "rows.bin"
    path.write_bytes(b"\0" * 400)
    rows = [np.full((2, 3, 4), i, dtype=np.uint8) for i in range(5)]  # 24 bytes each
    fd = os.open(path, os.O_WRONLY)
    try:
        ingest_pool._write_rows(fd, 16, [0, 1, 2, 5, 6], rows)
    finally:
        os.close(fd)
    data = np.frombuffer(path.read_bytes()[16:16 + 7 * 24], dtype=np.uint8).reshape(7, 24)
    assert [row[0] for row in data] == [0, 1, 2, 0, 0, 3, 4] and (data == data[:, :1]).all()
