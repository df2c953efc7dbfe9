"""A full disk: recognised wherever it surfaces, and met up front where it would otherwise crash.

A write to a full disk fails with ENOSPC (EDQUOT over a quota, EFBIG past a file-size limit), and
each of those becomes the same sentence for a person: "The disk is full: ...".

A memory-mapped file is the exception: a page of a sparse file gets its disk block only when
first written, and on a full disk that write does not fail, the process dies of SIGBUS (an
ingest worker gone, its dataset stuck in `ingesting`). Packs are sparse when created (numpy
writes only the header and the last byte) and rows are written into them later, by `pwritev` or
through the memory map (`PackWriter.put`, compaction after unreadable images, thumbnails).
`allocated_memmap` reserves every block when the file is created, so a full disk is an ordinary
OSError at once, before a single image is decoded, and no later write can meet it.
"""
from __future__ import annotations

import errno
import os

import numpy as np

FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def disk_full(exc: BaseException | None) -> OSError | None:
    """The OSError meaning "no space left" in `exc` or what caused it, else None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in FULL_ERRNOS:
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def allocated_memmap(path, *, dtype, shape) -> np.memmap:
    """`np.lib.format.open_memmap(path, "w+")` with the file's blocks reserved on disk."""
    array = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
    try:
        fd = os.open(path, os.O_RDWR)
        try:
            os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.ENOSYS):  # a filesystem that cannot reserve: as before
                raise
        finally:
            os.close(fd)
    except BaseException:
        del array
        raise
    return array
