"""The object-store layer: the cache that gives a machine what it fetched (whole or not at all, checked, within
its size), the store's names (put, local, remove, packs_of, size) on a folder store and on a real S3 API (moto's
server as a process), an upload that fails halfway, and the start-up checks that name the setting to fix.

A machine reading what another stored is this test with `settings.DATA_DIR` switched to a fresh folder: its own
copies and its cache are gone, only the store remains.
"""
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from dlstudio import storage
from dlstudio.object_cache import RECENT_SECONDS, STALE_PARTIAL_SECONDS, Cache, ChecksumError, entry_id
from tests.support.diskfull import with_file_size_limit
from tests.support.objectstore import KEYS, S3Server
from tests.support.services import ROOT, free_port

# --- Helpers ---------------------------------------------------------------------------------------------------


def manifest_of(files: dict[str, bytes]) -> dict:
    """The manifest `storage.put` writes for a folder holding `files`."""
    import hashlib

    return {"kind": "dir", "files": [{"path": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                                     for name, data in sorted(files.items())]}


def writer(files: dict[str, bytes]):
    """A `fill` that writes `files` into the entry folder."""
    def fill(folder: Path) -> None:
        for name, data in files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(data)
    return fill


def cache_contents(root: Path) -> list[str]:
    """What the cache holds, lock files and kept manifests aside: entries and any `.partial-*` folder."""
    return sorted(p.name for p in root.iterdir() if p.name not in ("locks", "manifests")) if root.exists() else []


def files_under(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def another_machine(settings, tmp_path) -> Path:
    """From now on this test is a machine with its own, empty data dir: only the store holds what was put."""
    settings.DATA_DIR = tmp_path / f"machine-{uuid.uuid4().hex[:6]}"
    settings.DATA_DIR.mkdir()
    return settings.DATA_DIR


# --- The cache -------------------------------------------------------------------------------------------------

TWO_FILES = {"images.npy": b"i" * 3000, "sub/labels.json": b'{"a": 1}'}


def test_an_entry_appears_whole_a_fill_that_fails_midway_leaves_nothing(tmp_path):
    cache = Cache(tmp_path / "cache", 10**9)
    manifest = manifest_of(TWO_FILES)

    def fails_after_the_first_file(folder):
        (folder / "images.npy").write_bytes(TWO_FILES["images.npy"])
        raise OSError("the connection dropped")

    with pytest.raises(OSError, match="the connection dropped"):
        cache.entry(manifest, fails_after_the_first_file)
    assert cache_contents(cache.root) == []  # no entry, no `.partial-*`

    path, fetched = cache.entry(manifest, writer(TWO_FILES))
    assert fetched and path == cache.root / entry_id(manifest) and files_under(path) == TWO_FILES
    assert cache_contents(cache.root) == [entry_id(manifest)]

    def never(folder):
        raise AssertionError("a filled entry is not fetched again")

    assert cache.entry(manifest, never) == (path, False)


def test_a_file_whose_checksum_does_not_match_is_refused_and_leaves_nothing(tmp_path):
    cache = Cache(tmp_path / "cache", 10**9)
    manifest = manifest_of(TWO_FILES)
    damaged = {**TWO_FILES, "images.npy": b"j" + TWO_FILES["images.npy"][1:]}  # same size, other bytes
    with pytest.raises(ChecksumError, match="^images.npy came from the object store damaged"):
        cache.entry(manifest, writer(damaged))
    assert cache_contents(cache.root) == []
    shorter = {**TWO_FILES, "sub/labels.json": b"{}"}
    with pytest.raises(ChecksumError, match="^sub/labels.json came"):
        cache.entry(manifest, writer(shorter))
    assert cache_contents(cache.root) == []


def three_entries(cache: Cache, now: float) -> list[str]:
    """Entries of 100 bytes each, last used 3, 2 and 1 hours before `now` (oldest first)."""
    paths = [cache.entry(manifest_of({name: name.encode() * 100}), writer({name: name.encode() * 100}))[0]
             for name in "abc"]
    assert cache_contents(cache.root) == sorted(path.name for path in paths)  # all recent: none evicted yet
    for age_hours, path in zip((3, 2, 1), paths):
        os.utime(path, (now - age_hours * 3600, now - age_hours * 3600))
    return [path.name for path in paths]


def test_above_its_size_the_cache_evicts_the_least_recently_used_first(tmp_path):
    now = time.time()
    cache = Cache(tmp_path / "cache", 250)
    a, b, c = three_entries(cache, now)
    assert cache.evict(now=now) == [a]  # 300 bytes > 250: the oldest goes, then 200 fit
    assert cache_contents(cache.root) == sorted([b, c])


def test_an_entry_just_used_moves_to_the_back_of_the_queue(tmp_path):
    now = time.time()
    cache = Cache(tmp_path / "cache", 250)
    a, b, c = three_entries(cache, now)
    manifest_a = manifest_of({"a": b"a" * 100})
    path, fetched = cache.entry(manifest_a, writer({}))  # a use: no fetch, and its time is now
    assert (path.name, fetched) == (a, False)
    assert cache.evict(now=time.time()) == [b]
    assert cache_contents(cache.root) == sorted([a, c])


def test_the_entry_to_keep_and_those_used_recently_stay_even_above_the_size(tmp_path):
    now = time.time()
    cache = Cache(tmp_path / "cache", 10)  # every entry is over it
    a, b, c = three_entries(cache, now)
    recent = now - (RECENT_SECONDS - 60)
    os.utime(cache.root / c, (recent, recent))
    assert cache.evict(keep=a, now=now) == [b]  # a: the one just given out; c: used within RECENT_SECONDS
    assert cache_contents(cache.root) == sorted([a, c])
    # Later, neither is protected any more.
    assert sorted(cache.evict(now=now + RECENT_SECONDS + 1)) == sorted([a, c])
    assert cache_contents(cache.root) == []


def test_stale_partial_folders_of_dead_processes_are_removed_fresh_ones_stay(tmp_path):
    now = time.time()
    cache = Cache(tmp_path / "cache", 10**9)
    cache.root.mkdir()
    stale, fresh = cache.root / ".partial-dead-0001", cache.root / ".partial-live-0002"
    for folder, age in ((stale, STALE_PARTIAL_SECONDS + 60), (fresh, 60)):
        folder.mkdir()
        (folder / "half.npy").write_bytes(b"x" * 10)
        os.utime(folder, (now - age, now - age))
    assert cache.evict(now=now) == []  # not entries: nothing counted as evicted
    assert cache_contents(cache.root) == [fresh.name]  # a process still filling keeps its folder


def test_adopt_moves_a_folder_in_as_if_fetched(tmp_path):
    cache = Cache(tmp_path / "cache", 10**9)
    manifest = manifest_of(TWO_FILES)
    made = tmp_path / "made"
    writer(TWO_FILES)(made)
    entry = cache.adopt(made, manifest)
    assert entry == cache.root / entry_id(manifest) and files_under(entry) == TWO_FILES and not made.exists()
    assert cache.entry(manifest, writer({})) == (entry, False)  # no download
    # The same content made again: the entry stays, the duplicate goes.
    again = tmp_path / "again"
    writer(TWO_FILES)(again)
    assert cache.adopt(again, manifest) == entry and not again.exists() and files_under(entry) == TWO_FILES


def test_adopt_puts_a_file_in_a_folder_under_its_name_as_a_fetch_does(tmp_path):
    cache = Cache(tmp_path / "cache", 10**9)
    made = tmp_path / "uploads" / "u.upload"
    made.parent.mkdir()
    made.write_bytes(b"zip bytes")
    manifest = {**manifest_of({"u.upload": b"zip bytes"}), "kind": "file"}
    entry = cache.adopt(made, manifest)
    assert files_under(entry) == {"u.upload": b"zip bytes"} and not made.exists()
    assert cache.entry(manifest, writer({})) == (entry, False)
    made.write_bytes(b"zip bytes")  # made again: the entry stays, the file goes
    assert cache.adopt(made, manifest) == entry and not made.exists()


# --- The stores ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    server = S3Server(tmp_path_factory.mktemp("s3")).start()
    yield server
    server.stop()


class FolderStore:
    kind = "file"

    def __init__(self, folder: Path):
        self.folder = folder
        self.url = f"file://{folder}"

    def keys(self) -> list[str]:
        return sorted(str(p.relative_to(self.folder)) for p in self.folder.rglob("*") if p.is_file()) \
            if self.folder.exists() else []


class BucketStore:
    kind = "s3"

    def __init__(self, server: S3Server, bucket: str):
        self.server, self.bucket = server, bucket
        self.url = f"s3://{bucket}/dlstudio"

    def keys(self) -> list[str]:
        return sorted(key.removeprefix("dlstudio/") for key in self.server.keys(self.bucket))


def use_store(settings, store) -> None:
    settings.STORAGE_URL = store.url
    if store.kind == "s3":
        settings.AWS_ENDPOINT_URL = store.server.endpoint
        settings.AWS_ACCESS_KEY_ID = KEYS["AWS_ACCESS_KEY_ID"]
        settings.AWS_SECRET_ACCESS_KEY = KEYS["AWS_SECRET_ACCESS_KEY"]
        settings.AWS_DEFAULT_REGION = KEYS["AWS_DEFAULT_REGION"]


@pytest.fixture(params=["file", "s3"])
def store(request, settings, isolated_data_dir, tmp_path):
    if request.param == "file":
        made = FolderStore(tmp_path / "elsewhere")
    else:
        server = request.getfixturevalue("s3")
        made = BucketStore(server, server.create_bucket(f"b-{uuid.uuid4().hex[:12]}"))
    use_store(settings, made)
    return made


def make_file(relative: str, data: bytes) -> bytes:
    path = storage.absolute(relative)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


def make_folder(relative: str, files: dict[str, bytes]) -> dict[str, bytes]:
    writer(files)(storage.absolute(relative))
    return files


PACK_FILES = {"images.npy": os.urandom(200_000), "meta/labels.json": b'{"classes": ["a", "b"]}',
              "meta/index.bin": os.urandom(5000)}


def test_a_file_and_a_folder_come_back_byte_for_byte_on_another_machine(store, settings, tmp_path, caplog):
    upload = make_file("uploads/u1.upload", os.urandom(300_000))
    make_folder("packs/3-abcd1234", PACK_FILES)
    storage.put("uploads/u1.upload")
    storage.put("packs/3-abcd1234")
    assert not storage.absolute("uploads/u1.upload").exists()  # moved into this machine's cache
    assert storage.local("uploads/u1.upload").read_bytes() == upload  # from there, with no fetch
    assert "manifests/packs/3-abcd1234.json" in store.keys() and "objects/packs/3-abcd1234/images.npy" in store.keys()

    another_machine(settings, tmp_path)
    caplog.set_level("INFO", logger="dlstudio.storage")
    assert storage.size("uploads/u1.upload") == len(upload)  # from the manifest, before any fetch
    assert storage.size("packs/3-abcd1234") == sum(len(data) for data in PACK_FILES.values())
    fetched = storage.local("uploads/u1.upload")
    assert fetched.read_bytes() == upload and settings.DATA_DIR / "cache" in fetched.parents
    assert files_under(storage.local("packs/3-abcd1234")) == PACK_FILES
    assert f"fetched uploads/u1.upload from the object store: {len(upload)} bytes in" in caplog.text
    assert storage.local("packs/3-abcd1234") == storage.local("packs/3-abcd1234")


def test_a_name_the_store_lacks_is_file_not_found(store):
    with pytest.raises(FileNotFoundError, match="packs/9-00000000 is not in the object store"):
        storage.local("packs/9-00000000")
    with pytest.raises(FileNotFoundError):
        storage.size("uploads/nothing.upload")


def test_remove_deletes_the_manifest_and_the_objects(store, settings, tmp_path):
    make_folder("packs/4-abcd1234", PACK_FILES)
    make_file("weights/w.pt", b"weights")
    storage.put("packs/4-abcd1234")
    storage.put("weights/w.pt")
    assert storage.local("packs/4-abcd1234").exists()
    storage.remove("packs/4-abcd1234")
    assert store.keys() == ["manifests/weights/w.pt.json", "objects/weights/w.pt"]  # the other name stays
    with pytest.raises(FileNotFoundError):  # on this machine, whose cache still holds its bytes
        storage.local("packs/4-abcd1234")
    another_machine(settings, tmp_path)
    with pytest.raises(FileNotFoundError):
        storage.local("packs/4-abcd1234")
    storage.remove("packs/4-abcd1234")  # missing is fine
    storage.remove("weights/w.pt")
    assert store.keys() == []


def test_packs_of_sees_the_packs_in_the_store(store, settings, tmp_path):
    for name in ("packs/5-aaaa1111", "packs/5-bbbb2222", "packs/55-cccc3333", "packs/6-dddd4444"):
        make_folder(name, {"images.npy": name.encode()})
        storage.put(name)
    make_folder("packs/5-eeee5555.partial", {"images.npy": b"half"})  # an attempt on this machine, not stored
    assert storage.packs_of(5) == ["packs/5-aaaa1111", "packs/5-bbbb2222", "packs/5-eeee5555.partial"]
    another_machine(settings, tmp_path)
    assert storage.packs_of(5) == ["packs/5-aaaa1111", "packs/5-bbbb2222"]
    assert storage.packs_of(6) == ["packs/6-dddd4444"] and storage.packs_of(7) == []


# --- An upload that fails halfway ------------------------------------------------------------------------------


@pytest.fixture
def tiny_disk(tmp_path):
    """A 1 MiB tmpfs (root only; skipped elsewhere)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode(errors='replace').strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_folder_store_that_fills_up_midway_keeps_no_object_of_the_failed_put(
        settings, isolated_data_dir, tiny_disk, tmp_path):
    """The store's disk takes the first file (600 KB), not the second: ENOSPC. What was sent goes, the half
    written second file too, and no manifest names the folder."""
    store = FolderStore(tiny_disk / "store")
    use_store(settings, store)
    make_folder("packs/7-abcd1234", {"a.npy": os.urandom(600_000), "b.npy": os.urandom(600_000)})
    with pytest.raises(OSError) as raised:
        storage.put("packs/7-abcd1234")
    assert raised.value.errno == 28  # ENOSPC
    assert store.keys() == []
    assert storage.absolute("packs/7-abcd1234").is_dir()  # this machine keeps its copy: ingest removes it
    another_machine(settings, tmp_path)
    with pytest.raises(FileNotFoundError):
        storage.local("packs/7-abcd1234")


def test_an_s3_put_refused_at_the_second_file_deletes_the_first(settings, isolated_data_dir, s3, tmp_path,
                                                                 caplog):
    """The second file's name cannot be an S3 key (not UTF-8): the first object was sent, then deleted."""
    # Quiet: the warning about the second name (which cannot be deleted either) would carry its undecodable
    # byte into the test report, which pytest-xdist cannot send between processes.
    caplog.set_level("ERROR", logger="dlstudio.storage")
    store = BucketStore(s3, s3.create_bucket(f"b-{uuid.uuid4().hex[:12]}"))
    use_store(settings, store)
    bad = os.fsdecode(b"b-\xff.npy")
    make_folder("packs/8-abcd1234", {"a.npy": b"a" * 1000, bad: b"b" * 1000})
    log_before = (s3.directory / "s3.log").read_text()
    with pytest.raises(UnicodeEncodeError):
        storage.put("packs/8-abcd1234")
    assert store.keys() == []
    sent = (s3.directory / "s3.log").read_text()[len(log_before):]
    key = f"/{store.bucket}/dlstudio/objects/packs/8-abcd1234/a.npy"
    assert f"PUT {key} " in sent and f"DELETE {key} " in sent, sent  # it did go up before the failure
    another_machine(settings, tmp_path)
    with pytest.raises(FileNotFoundError):
        storage.local("packs/8-abcd1234")


# --- A full disk while filling the cache -----------------------------------------------------------------------


@pytest.mark.django_db
def test_a_full_disk_while_fetching_the_pack_fails_the_run_with_its_sentence_and_leaves_no_partial(
        world, settings, isolated_data_dir, monkeypatch, tmp_path):
    from apps.experiments.services import experiment_create
    from apps.runs.services import run_start
    from apps.runs.training import run_train
    from tests.support.factories import ready_dataset

    use_store(settings, FolderStore(tmp_path / "store"))
    # 60 grayscale 64x64 images: an image file over the 64 KB any file may grow to in the worker's child.
    dataset = ready_dataset(world.team, tmp_path / "big.zip", per_class=30, size=64)
    experiment = experiment_create(team=world.team, user=world.editor, name="x", dataset=dataset,
                                   config={"epochs": 1, "batch_size": 8, "hidden_units": [16], "seed": 1})
    run = run_start(experiment=experiment, user=world.editor)
    worker_dir = another_machine(settings, tmp_path)  # the training worker fetches the pack into its cache
    real = storage.local

    def on_a_full_disk(relative):
        return with_file_size_limit(64 * 1024, real, relative)

    monkeypatch.setattr(storage, "local", on_a_full_disk)
    assert run_train(run_id=run.pk, worker="w@test") == "failed"
    run.refresh_from_db()
    assert run.error == ("The disk is full: this run could not write its files (File too large); free some space "
                         "on the data disk, then start the run again."), run.error
    assert cache_contents(worker_dir / "cache") == []  # no entry, no `.partial-*`

    monkeypatch.setattr(storage, "local", real)  # with room again, the same pack comes whole
    assert files_under(real(dataset.pack_path)) and len(cache_contents(worker_dir / "cache")) == 1


def test_a_really_full_disk_while_filling_the_cache_is_the_same_sentence_and_leaves_nothing(
        settings, isolated_data_dir, tiny_disk, tmp_path):
    """ENOSPC itself: 1.2 MB of pack fetched onto a 1 MiB data dir."""
    from dlstudio.jobs import failure_sentence

    use_store(settings, FolderStore(tmp_path / "store"))
    make_folder("packs/9-abcd1234", {"a.npy": os.urandom(600_000), "b.npy": os.urandom(600_000)})
    storage.put("packs/9-abcd1234")
    settings.DATA_DIR = tiny_disk  # a worker whose data disk has 1 MiB
    with pytest.raises(OSError) as raised:
        storage.local("packs/9-abcd1234")
    assert raised.value.errno == 28  # ENOSPC
    assert failure_sentence(raised.value, doing="Training", subject="this run", again="start the run again") == (
        "The disk is full: this run could not write its files (No space left on device); free some space on the "
        "data disk, then start the run again.")
    assert cache_contents(tiny_disk / "cache") == []


# --- Start-up checks -------------------------------------------------------------------------------------------


class FakeRedis:
    """Answers PING (and OK to anything else) on a free port: `manage.py worker` checks Redis before the store."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"redis://127.0.0.1:{self.sock.getsockname()[1]}/0"
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.answer, args=(conn,), daemon=True).start()

    @staticmethod
    def answer(conn):
        with conn, conn.makefile("rb") as lines:
            while (header := lines.readline()).startswith(b"*"):
                words = []
                for _ in range(int(header[1:])):
                    size = int(lines.readline()[1:])
                    words.append(lines.read(size + 2)[:-2])
                command = words[0].upper()
                if command == b"HELLO":  # RESP3's handshake: a map that says which protocol is spoken
                    conn.sendall(b"%1\r\n$5\r\nproto\r\n:3\r\n")
                else:
                    conn.sendall(b"+PONG\r\n" if command == b"PING" else b"+OK\r\n")

    def close(self):
        self.sock.close()


@pytest.fixture(scope="module")
def fake_redis():
    server = FakeRedis()
    yield server
    server.close()


def start_command(command: list[str], env: dict, data_dir: Path):
    inherited = {k: v for k, v in os.environ.items()
                 if k != "DJANGO_ALLOW_ASYNC_UNSAFE" and not k.startswith(("AWS_", "DLSTUDIO_", "AZURE_"))}
    full = {**inherited, "DJANGO_SETTINGS_MODULE": "dlstudio.settings", "DLSTUDIO_DATA_DIR": str(data_dir), **env}
    started = time.monotonic()
    result = subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=full, capture_output=True,
                            text=True, timeout=60)
    return result, time.monotonic() - started


COMMANDS = {"worker": ["worker", "--gpus", "all"], "serve": ["serve"]}
DEADLINE = 15  # seconds: a Django start-up and one refused request, not minutes of retries


@pytest.fixture(scope="module")
def refusing_s3(tmp_path_factory):
    server = S3Server(tmp_path_factory.mktemp("s3-keys"), check_keys=True).start()
    yield server
    server.stop()


def bad_settings(case, s3, refusing_s3):
    if case == "bucket":
        return s3.env("no-such-bucket"), (
            f"The bucket 'no-such-bucket' of DLSTUDIO_STORAGE_URL does not exist at {s3.endpoint}; create it, "
            "or correct the URL.")
    if case == "keys":
        return refusing_s3.env("keys-refused"), (  # refused before the bucket matters
            f"The object store at {refusing_s3.endpoint} refused the keys (InvalidAccessKeyId): check "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    if case == "endpoint":
        nowhere = f"http://127.0.0.1:{free_port()}"
        return {**s3.env("whatever"), "AWS_ENDPOINT_URL": nowhere}, (
            f"Nothing answers at AWS_ENDPOINT_URL={nowhere}; check the address and that its port is reachable "
            "from this machine.")
    return {"DLSTUDIO_STORAGE_URL": "ftp://files.example/dlstudio"}, (
        "DLSTUDIO_STORAGE_URL must start with file://, s3:// or azure://, not 'ftp://files.example/dlstudio'")


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("case", ["bucket", "keys", "endpoint", "scheme"])
def test_a_store_that_cannot_be_used_stops_the_command_at_start_with_one_sentence_naming_the_setting(
        case, command, s3, refusing_s3, fake_redis, tmp_path):
    env, expected = bad_settings(case, s3, refusing_s3)
    if case == "keys":
        env["AWS_ACCESS_KEY_ID"] = "AKIAUNKNOWNKEY000000"
    result, took = start_command(COMMANDS[command], {**env, "REDIS_URL": fake_redis.url}, tmp_path / "data")
    assert result.returncode == 1, result.stdout + result.stderr
    assert expected in result.stderr, result.stderr
    if case != "scheme":  # one sentence, no traceback
        assert result.stderr.strip().startswith("CommandError: ") and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert took < DEADLINE, f"{took:.1f} s"
    assert "Starting" not in result.stdout and "is starting" not in result.stdout


def test_machines_that_check_one_store_at_the_same_time_do_not_fail_each_other(tmp_path):
    """Each check writes, reads back and deletes a probe: with one name for all, one machine's delete made
    another's read come back empty ("did not give back what was written") at start-up."""
    from types import SimpleNamespace

    from dlstudio import object_store

    machines = [object_store.from_settings(SimpleNamespace(STORAGE_URL=f"file://{tmp_path / 'store'}",
                                                           DATA_DIR=tmp_path / f"data-{i}")) for i in range(4)]
    failures = []

    def start_up_checks(store):
        for _ in range(100):
            try:
                store.check()
            except object_store.StoreError as exc:
                failures.append(str(exc))

    threads = [threading.Thread(target=start_up_checks, args=(store,)) for store in machines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    assert list((tmp_path / "store").iterdir()) == []  # every probe deleted


# --- Settings --------------------------------------------------------------------------------------------------


def settings_of(tmp_path, **env) -> subprocess.CompletedProcess:
    inherited = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    script = ("import django; django.setup(); from django.conf import settings; from dlstudio import storage; "
              "print(settings.CACHE_MAX_GB, storage.cache().max_bytes)")
    return subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**inherited, "DJANGO_SETTINGS_MODULE": "dlstudio.settings",
                               "DLSTUDIO_DATA_DIR": str(tmp_path), **env})


def test_the_cache_size_is_whole_gigabytes_at_least_one_50_by_default(tmp_path):
    assert settings_of(tmp_path).stdout.split() == ["50", str(50 * 10**9)]
    assert settings_of(tmp_path, DLSTUDIO_CACHE_MAX_GB="7").stdout.split() == ["7", str(7 * 10**9)]
    for value, sentence in (("lots", "DLSTUDIO_CACHE_MAX_GB must be a whole number, not 'lots'"),
                            ("1.5", "DLSTUDIO_CACHE_MAX_GB must be a whole number, not '1.5'"),
                            ("0", "DLSTUDIO_CACHE_MAX_GB must be at least 1, not 0")):
        result = settings_of(tmp_path, DLSTUDIO_CACHE_MAX_GB=value)
        assert result.returncode != 0 and sentence in result.stderr, result.stderr


def test_the_cache_lives_under_the_data_dir(settings, isolated_data_dir):
    settings.CACHE_MAX_GB = 3
    cache = storage.cache()
    assert cache.root == isolated_data_dir / "cache" and cache.max_bytes == 3 * 10**9
