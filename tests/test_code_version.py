"""The code version of a checkout, and of a copy without .git (the build-time version file)."""
import shutil
import subprocess

from dlstudio.version import ROOT, VERSION_FILE, code_version_at


def test_a_checkout_asks_git():
    expected = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
    assert code_version_at(ROOT) == expected[:40] != "unknown"


def test_a_copy_without_git_reads_the_version_file_else_says_unknown(tmp_path):
    copy = tmp_path / "installed"
    shutil.copytree(ROOT / "dlstudio", copy / "dlstudio", ignore=shutil.ignore_patterns("__pycache__", "BUILD_VERSION"))
    assert code_version_at(copy) == "unknown"
    (copy / VERSION_FILE).write_text("v1.4.0-12-gdeadbee\n")
    assert code_version_at(copy) == "v1.4.0-12-gdeadbee"


def test_make_version_file_writes_what_git_says(tmp_path):
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "dlstudio").mkdir()
    shutil.copy(ROOT / "Makefile", repo / "Makefile")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "add", "Makefile"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "one"], check=True)
    subprocess.run(["make", "-s", "-C", str(repo), "version-file"], check=True)
    written = (repo / VERSION_FILE).read_text().strip()
    assert written and written == code_version_at(repo)
    shutil.rmtree(repo / ".git")
    assert code_version_at(repo) == written
