"""Archives made on the fly with Pillow: the tests never depend on files from elsewhere."""
import io
import tarfile
import zipfile

import numpy as np
from PIL import Image


def png(seed: int, size=(12, 12), mode="RGB") -> bytes:
    """A distinct small image per seed (random pixels, so no two seeds are duplicates)."""
    rng = np.random.default_rng(seed)
    channels = 1 if mode == "L" else 3
    pixels = rng.integers(0, 256, size=(size[1], size[0], channels), dtype=np.uint8)
    image = Image.fromarray(pixels[:, :, 0] if channels == 1 else pixels, mode=mode)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def class_entries(classes=("cat", "dog"), per_class=12, size=(12, 12), prefix="", mode="RGB") -> dict:
    entries, seed = {}, 0
    for name in classes:
        for i in range(per_class):
            entries[f"{prefix}{name}/{i:03d}.png"] = png(seed, size, mode)
            seed += 1
    return entries


def zip_bytes(entries: dict) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return out.getvalue()


def tar_bytes(entries: dict, *, gz=False, symlinks: dict | None = None) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz" if gz else "w") as archive:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            archive.addfile(info)
    return out.getvalue()
