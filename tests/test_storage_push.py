"""`manage.py storage_push`: a deployment that kept its files in the data dir moves them into an object store."""
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from dlstudio import storage


def test_it_copies_every_named_file_and_a_machine_with_an_empty_data_dir_reads_them(
        isolated_data_dir, settings, finished_run, tmp_path, capsys):
    pack, best = finished_run.dataset.pack_path, finished_run.best_checkpoint
    before = {name: storage.absolute(name) for name in (pack, best)}
    settings.STORAGE_URL = f"file://{tmp_path / 'store'}"

    call_command("storage_push")
    assert "Copied 3 files" in capsys.readouterr().out  # the pack, the last and the best checkpoint
    call_command("storage_push")
    assert "Copied 0 files into the object store; 3 were there already" in capsys.readouterr().out

    settings.DATA_DIR = tmp_path / "another-machine"
    settings.DATA_DIR.mkdir()
    fetched = storage.local(best)
    assert fetched.read_bytes() == before[best].read_bytes()
    assert sorted(p.name for p in storage.local(pack).iterdir()) == sorted(p.name for p in before[pack].iterdir())


def test_without_an_object_store_it_says_which_setting_to_set(isolated_data_dir, settings):
    settings.STORAGE_URL = ""
    with pytest.raises(CommandError, match="DLSTUDIO_STORAGE_URL"):
        call_command("storage_push")


def test_given_names_it_copies_those_files_only_whether_or_not_a_row_names_them(
        isolated_data_dir, settings, tmp_path, capsys):
    note, other = "runs/7/claim-1/vanished.json", "runs/7/claim-1/other.json"
    for name in (note, other):
        storage.absolute(name).parent.mkdir(parents=True, exist_ok=True)
        storage.absolute(name).write_text('{"pid": 1}')
    settings.STORAGE_URL = f"file://{tmp_path / 'store'}"

    call_command("storage_push", note)
    assert "Copied 1 files" in capsys.readouterr().out
    assert storage.stored(note) and not storage.stored(other)
    assert storage.absolute(note).exists()  # the data dir is not changed
