"""Uploads through the browser's path — the upload page's form, and the session-authenticated API its
JavaScript calls with the CSRF token — with the whole bad-input list of the datasets issue, plus SVG and
HTML files, `x.jpg.php`, a PNG with HTML after its end and more files than Django accepts. Each ends as
a 4xx naming the problem, a failed dataset with a reason, or a ready dataset that lists what it skipped;
never a 500. Nothing uploaded is served back as it came: what the app serves from an upload is pixels,
re-encoded as image/png with nosniff."""
import io
import stat
import struct
import tarfile
import zipfile
import zlib

import numpy as np
import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image as PILImage

from apps.datasets.models import Dataset
from apps.datasets.ingest import dataset_ingest
from tests.security.conftest import snapshot
from tests.support.factories import class_entries, png, tar_bytes, zip_bytes

pytestmark = pytest.mark.django_db

MARKER = b"<script>alert('uploaded')</script>"
HTML = b"<!doctype html><html><body>" + MARKER + b"</body></html>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(1)</script></svg>'
PHP = b"<?php system($_GET['c']); ?>" + MARKER


def png_with_html() -> bytes:
    """A valid PNG with an HTML page after its IEND chunk: a polyglot a sniffing browser might render."""
    return png(4242, size=(16, 16)) + HTML


def bomb_png() -> bytes:
    """A small PNG whose header claims 30000 x 30000 pixels."""
    out = io.BytesIO()
    PILImage.new("L", (10, 10)).save(out, format="PNG")
    data = bytearray(out.getvalue())
    data[16:24] = struct.pack(">II", 30000, 30000)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def truncated_jpeg() -> bytes:
    out = io.BytesIO()
    PILImage.fromarray(np.random.default_rng(1).integers(0, 255, (32, 32, 3), np.uint8)).save(out, format="JPEG")
    return out.getvalue()[:300]


def hostile_zip() -> bytes:
    """Good images, and beside them every kind of bad entry."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in {
            **class_entries(),
            "../../evil.png": png(500), "/etc/evil2.png": png(501),
            "cat/empty.png": b"", "cat/notes.txt": b"not an image",
            "dog/truncated.jpg": truncated_jpeg(), "dog/huge.png": bomb_png(),
            "cat/zipbomb.bmp": b"\0" * (3 * 2**20),
            "cat/drawing.svg": SVG, "cat/page.html": HTML, "cat/x.jpg.php": PHP,
            "dog/polyglot.png": png_with_html(),
            "dog/cafX.png": png(504),
        }.items():
            archive.writestr(name, data)
        link = zipfile.ZipInfo("cat/link.png")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
    return out.getvalue().replace(b"dog/cafX.png", b"dog/caf\xe9.png")  # a name that is not UTF-8


def links_tar() -> bytes:
    data = io.BytesIO(tar_bytes(class_entries(), symlinks={"cat/sym.png": "/etc/passwd"}))
    out = io.BytesIO()
    with tarfile.open(fileobj=data) as source, tarfile.open(fileobj=out, mode="w:gz") as archive:
        for member in source.getmembers():
            archive.addfile(member, source.extractfile(member) if member.isfile() else None)
        hard = tarfile.TarInfo("dog/hard.png")
        hard.type, hard.linkname = tarfile.LNKTYPE, "cat/000.png"
        archive.addfile(hard)
    return out.getvalue()


def expanding_zip() -> bytes:
    """An archive that expands far beyond its size as a whole (each entry alone looks harmless)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for i in range(8):
            archive.writestr(f"{'cat' if i % 2 else 'dog'}/{i}.bmp", b"\0" * 2**20)
    return out.getvalue()


# (case, file name, bytes, expected): "400" refused at upload; "failed: <word>"; "ready: <skipped names>".
CASES = [
    ("not an archive", "notes.zip", b"just some text", "400"),
    ("empty file", "empty.zip", b"", "400: empty"),
    ("an image", "cat.png", png(1), "400"),
    ("an SVG", "drawing.svg", SVG, "400"),
    ("an HTML page", "index.html", HTML, "400"),
    ("x.jpg.php", "x.jpg.php", PHP, "400"),
    ("a PNG with HTML after it", "polyglot.png", png_with_html(), "400"),
    ("empty archive", "empty.zip", zip_bytes({}), "failed: empty"),
    ("no images", "texts.zip", zip_bytes({"readme.txt": b"hello", "notes/a.txt": b"words"}), "failed: image"),
    ("one class", "one.zip", zip_bytes(class_entries(classes=("only",), per_class=5)), "failed: class"),
    ("expands far beyond its size", "bomb.zip", expanding_zip(), "failed: bomb"),
    ("hostile entries", "pets.zip", hostile_zip(),
     "ready: ../../evil.png /etc/evil2.png cat/empty.png cat/notes.txt dog/truncated.jpg dog/huge.png "
     "cat/zipbomb.bmp cat/drawing.svg cat/page.html cat/x.jpg.php cat/link.png"),
    ("links in a tar", "pets.tar.gz", links_tar(), "ready: cat/sym.png dog/hard.png"),
]
OPTIONS = {"val_fraction": "0.2", "test_fraction": "0.1", "resize_mode": "squash", "color": "auto", "seed": "0"}


@pytest.fixture
def editor(objects, signed_in):
    """The editor's browser: a session with the CSRF check on, and the token its pages carry."""
    client = signed_in(objects.editor, enforce_csrf_checks=True)
    client.get("/datasets/upload")
    client.csrf = client.cookies["csrftoken"].value
    return client


def through_the_page(client, filename, content):
    return client.post("/datasets/upload", {"archive": SimpleUploadedFile(filename, content), "name": "Upload",
                                            "csrfmiddlewaretoken": client.csrf, **OPTIONS})


def through_the_api(client, filename, content, objects):
    return client.post("/api/datasets", {"archive": SimpleUploadedFile(filename, content), "name": "Upload",
                                         "team": objects.team.slug, **OPTIONS}, HTTP_X_CSRFTOKEN=client.csrf)


@pytest.mark.parametrize("way", ["page", "api"])
@pytest.mark.parametrize("case,filename,content,expected", CASES, ids=[c[0] for c in CASES])
def test_bad_uploads_get_a_reason_never_a_500(way, case, filename, content, expected, objects, editor):
    before = Dataset.objects.count()
    if way == "page":
        response = through_the_page(editor, filename, content)
    else:
        response = through_the_api(editor, filename, content, objects)
    if expected.startswith("400"):
        says = (expected.partition(": ")[2] or "zip").encode()
        if way == "page":  # the form again, the reason beside the archive field
            assert response.status_code == 200 and b'data-field="archive"' in response.content
            assert says in response.content
        else:
            assert response.status_code == 400 and response.json()["field"] == "archive"
            assert says.decode() in response.json()["error"]
        assert Dataset.objects.count() == before and not list((settings.DATA_DIR / "uploads").glob("*"))
        return
    assert response.status_code == (302 if way == "page" else 201), response.content[:500]
    dataset = Dataset.objects.latest("pk")
    dataset_ingest(dataset_id=dataset.pk)
    dataset.refresh_from_db()
    status, _, detail = expected.partition(": ")
    assert dataset.status == status, dataset.error
    page = editor.get(f"/datasets/{dataset.pk}/")
    assert page.status_code == 200
    if status == "failed":
        assert detail in dataset.error.lower() and dataset.error.endswith(".")
        assert b'id="dataset-error"' in page.content
    else:
        listed = {c["name"] for c in dataset.health["corrupt"]}
        for name in detail.split():
            assert name in listed, (name, listed)
        assert all(c["reason"] for c in dataset.health["corrupt"])
        assert b'id="corrupt"' in page.content
    assert not list((settings.DATA_DIR / "uploads").glob("*")), "the upload outlived its ingest"


def test_nothing_uploaded_is_served_back_as_it_came(objects, editor):
    response = through_the_api(editor, "pets.zip", hostile_zip(), objects)
    dataset = Dataset.objects.get(pk=response.json()["id"])
    dataset_ingest(dataset_id=dataset.pk)
    polyglot = dataset.images.get(name="dog/polyglot.png")
    thumb = editor.get(f"/datasets/{dataset.pk}/images/{polyglot.index}.png")
    # Pixels, re-encoded: an image/png the browser may not sniff, shown inline, never the uploaded bytes.
    assert thumb.status_code == 200 and thumb["Content-Type"] == "image/png"
    assert thumb["X-Content-Type-Options"] == "nosniff" and thumb["Content-Disposition"] == "inline"
    body = thumb.content
    assert body.startswith(b"\x89PNG") and b"<html" not in body and MARKER not in body
    assert body.endswith(b"IEND\xaeB`\x82") and PILImage.open(io.BytesIO(body)).format == "PNG"
    mean = editor.get(f"/datasets/{dataset.pk}/mean.png")
    assert mean["Content-Type"] == "image/png" and mean["X-Content-Type-Options"] == "nosniff"
    # Nowhere in the data dir, nor at any URL: the upload itself was removed once it was packed.
    for path in settings.DATA_DIR.rglob("*"):
        if path.is_file():
            assert MARKER not in path.read_bytes(), path
    for url in ("/files/", "/media/", "/uploads/", "/static/../uploads/", f"/datasets/{dataset.pk}/archive"):
        assert editor.get(url).status_code == 404, url


def test_exports_are_attachments_with_nosniff(objects, signed_in):
    client = signed_in(objects.viewer)
    for path, content_type in (("checkpoint", "application/octet-stream"), ("onnx", "application/octet-stream"),
                               ("model-card", "application/json")):
        response = client.get(f"/runs/{objects.run.pk}/export/{path}")
        assert response.status_code == 200, path
        assert response["Content-Type"] == content_type and response["X-Content-Type-Options"] == "nosniff"
        assert response["Content-Disposition"].startswith("attachment; filename=")


def test_over_the_limit_is_413_on_the_page_and_the_api(objects, editor, settings):
    settings.MAX_UPLOAD_MB = 1
    big = b"PK\x03\x04" + b"\0" * (2 * 2**20)
    page = through_the_page(editor, "big.zip", big)
    assert page.status_code == 413 and b"limit of 1 MB" in page.content
    api = through_the_api(editor, "big.zip", big, objects)
    assert api.status_code == 413 and "limit of 1 MB" in api.json()["error"]


def many_files(count):
    return [SimpleUploadedFile(f"{i}.png", png(i)) for i in range(count)]


def test_more_files_than_django_accepts_is_a_400_on_every_form(objects, editor):
    before = snapshot()
    page = editor.post("/datasets/upload", {"archive": many_files(101), "name": "many",
                                            "csrfmiddlewaretoken": editor.csrf, **OPTIONS})
    assert page.status_code == 400 and b"at most 100 files" in page.content
    weights = editor.post("/weights/upload", {"file": many_files(101), "arch": "resnet18",
                                              "csrfmiddlewaretoken": editor.csrf})
    assert weights.status_code == 400 and b"at most 100 files" in weights.content
    for url, field in (("/api/datasets", "archive"), (f"/api/runs/{objects.run.pk}/predict", "images"),
                       ("/api/weights", "file")):
        response = editor.post(url, {field: many_files(101)}, HTTP_X_CSRFTOKEN=editor.csrf)
        assert response.status_code == 400 and "at most 100 files" in response.json()["error"], url
    assert snapshot() == before


@pytest.mark.parametrize("filename,content", [("drawing.svg", SVG), ("page.html", HTML), ("x.jpg.php", PHP),
                                              ("notes.png", b"text named like an image")])
def test_predict_refuses_what_is_not_an_image_naming_it(filename, content, objects, editor):
    response = editor.post(f"/api/runs/{objects.run.pk}/predict", {"image": SimpleUploadedFile(filename, content)},
                           HTTP_X_CSRFTOKEN=editor.csrf)
    assert response.status_code == 400 and filename in response.json()["error"]


def test_predict_reads_only_the_pixels_of_a_png_with_html_after_it(objects, editor):
    response = editor.post(f"/api/runs/{objects.run.pk}/predict",
                           {"image": SimpleUploadedFile("polyglot.png", png_with_html())}, HTTP_X_CSRFTOKEN=editor.csrf)
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert MARKER.decode() not in response.content.decode()


@pytest.mark.parametrize("filename,content", [("drawing.svg", SVG), ("page.html", HTML), ("x.jpg.php", PHP),
                                              ("weights.pth", HTML), ("weights.pth", png_with_html())])
def test_weights_uploads_that_are_not_state_dicts_are_refused_and_not_kept(filename, content, objects, editor):
    page = editor.post("/weights/upload", {"file": SimpleUploadedFile(filename, content), "arch": "resnet18",
                                           "csrfmiddlewaretoken": editor.csrf})
    assert page.status_code == 200 and b'class="field-error"' in page.content
    api = editor.post("/api/weights", {"file": SimpleUploadedFile(filename, content), "arch": "resnet18",
                                       "team": objects.team.slug}, HTTP_X_CSRFTOKEN=editor.csrf)
    assert api.status_code == 400 and api.json()["field"] == "file"
    assert not list((settings.DATA_DIR / "weights").glob("*")) if (settings.DATA_DIR / "weights").exists() else True
