"""Disks that fail: a full disk or a missing permission is one clear error, and nothing half-written.

The failures are injected (monkeypatch) where the bytes are written, so the tests run on any disk.
"""

import errno
import os
import pathlib
import stat

import pytest

from speechft.errors import SpeechftError
from speechft.io_utils import atomic_path, atomic_write_text


def _fail_after_half(code: int):
    """Path.write_bytes that writes half the bytes, then fails as the disk would."""
    real = pathlib.Path.write_bytes

    def write_bytes(self, data):
        real(self, data[: len(data) // 2])
        raise OSError(code, os.strerror(code))

    return write_bytes


def _old_file(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("previous content")
    return target


def test_disk_full_keeps_the_previous_content_and_no_temp_file(tmp_path, monkeypatch):
    target = _old_file(tmp_path)
    monkeypatch.setattr(pathlib.Path, "write_bytes", _fail_after_half(errno.ENOSPC))
    with pytest.raises(SpeechftError, match="the disk is full") as e:
        atomic_write_text(target, "new content " * 1000)
    assert str(target) in str(e.value) and "keeps its previous content" in str(e.value)
    assert "Fix: free space there" in str(e.value)
    assert target.read_text() == "previous content"
    assert os.listdir(tmp_path) == ["report.json"]  # the half-written temporary file is gone


def test_disk_full_at_the_flush_of_atomic_path(tmp_path, monkeypatch):
    target = _old_file(tmp_path)

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(SpeechftError, match=f"cannot write {target}: the disk is full"):
        with atomic_path(target) as tmp:
            tmp.write_text("new content")
    assert target.read_text() == "previous content" and os.listdir(tmp_path) == ["report.json"]


def test_permission_denied_is_named(tmp_path, monkeypatch):
    target = _old_file(tmp_path)
    monkeypatch.setattr(pathlib.Path, "write_bytes", _fail_after_half(errno.EACCES))
    with pytest.raises(SpeechftError, match="permission denied") as e:
        atomic_write_text(target, "new content")
    assert str(target) in str(e.value) and "Fix: make the folder writable" in str(e.value)
    assert target.read_text() == "previous content" and os.listdir(tmp_path) == ["report.json"]


def test_read_only_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    target = folder / "m.jsonl"
    target.write_text("previous content")
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)  # 0o500
    try:
        if os.access(folder, os.W_OK):  # root ignores the mode bits
            pytest.skip("the folder stays writable (running as root?)")
        with pytest.raises(SpeechftError, match="permission denied") as e:
            atomic_write_text(target, "new content")
        assert str(target) in str(e.value)
        assert target.read_text() == "previous content" and os.listdir(folder) == ["m.jsonl"]
    finally:
        folder.chmod(0o700)


def test_other_errors_pass_through_and_still_leave_no_temp_file(tmp_path, monkeypatch):
    target = _old_file(tmp_path)
    monkeypatch.setattr(pathlib.Path, "write_bytes", _fail_after_half(errno.EIO))
    with pytest.raises(OSError) as e:  # not a disk-full or permission problem: not disguised as one
        atomic_write_text(target, "new content")
    assert e.value.errno == errno.EIO and not isinstance(e.value, SpeechftError)
    assert target.read_text() == "previous content" and os.listdir(tmp_path) == ["report.json"]


def test_a_failing_writer_leaves_the_target_untouched(tmp_path):
    target = _old_file(tmp_path)
    with pytest.raises(ValueError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise ValueError("the writer failed")
    assert target.read_text() == "previous content" and os.listdir(tmp_path) == ["report.json"]


def test_success_replaces_the_content(tmp_path):
    target = _old_file(tmp_path)
    atomic_write_text(target, "new content")
    assert target.read_text() == "new content" and os.listdir(tmp_path) == ["report.json"]
