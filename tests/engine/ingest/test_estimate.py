"""The pack an upload would make, known from its listing and its images' headers before decoding."""
from workers.engine import estimate_pack, upscale_sentence
from tests.support.factories import class_entries, tar_bytes, zip_bytes


def test_a_zip_of_1x1_images_at_1024_rgb_is_weighed_without_decoding(tmp_path):
    archive = tmp_path / "dots.zip"
    archive.write_bytes(zip_bytes(class_entries(per_class=100, size=(1, 1))))
    estimate = estimate_pack(archive, image_size=1024, color="rgb")
    assert (estimate.images, estimate.image_size, estimate.channels) == (200, 1024, 3)
    assert estimate.bytes > 200 * 1024 * 1024 * 3  # the pixels, plus thumbnails and the rest
    assert estimate.largest_side == 1 and estimate.complete
    assert upscale_sentence(estimate, 1024).startswith("The largest image in this archive is 1 px")
    assert upscale_sentence(estimate, 4) is None  # 4 x the largest side is allowed


def test_a_tar_counts_images_only_and_auto_takes_the_shared_size_and_gray(tmp_path):
    entries = {**class_entries(per_class=3, size=(16, 16), mode="L"), "README.txt": b"notes"}
    archive = tmp_path / "gray.tar.gz"
    archive.write_bytes(tar_bytes(entries, gz=True))
    estimate = estimate_pack(archive, image_size=None, color="auto", headers=None)
    assert (estimate.images, estimate.image_size, estimate.channels) == (6, 16, 1)


def test_a_sample_of_headers_never_refuses_an_upscale(tmp_path):
    """Only every header can show that every image is small: a sample leaves it to the ingest job."""
    archive = tmp_path / "dots.zip"
    archive.write_bytes(zip_bytes(class_entries(per_class=10, size=(1, 1))))
    sampled = estimate_pack(archive, image_size=1024, color="rgb", headers=5)
    assert sampled.headers_read == 5 and not sampled.complete
    assert upscale_sentence(sampled, 1024) is None


def test_an_unreadable_header_leaves_the_size_unknown(tmp_path):
    entries = {**class_entries(per_class=3, size=(1, 1)), "cat/broken.png": b"\x89PNG not really"}
    archive = tmp_path / "mixed.zip"
    archive.write_bytes(zip_bytes(entries))
    estimate = estimate_pack(archive, image_size=1024, color="rgb", headers=None)
    assert estimate.images == 7 and estimate.headers_read == 6 and not estimate.complete
    assert upscale_sentence(estimate, 1024) is None
