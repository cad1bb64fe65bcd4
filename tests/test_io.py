"""attnlab._io.atomic_write: whole files or none, never over a file it must not replace."""

import os

import pytest

from attnlab import _io
from attnlab._io import atomic_write, stale_temporaries


def test_writes_bytes_text_or_through_a_function(tmp_path):
    assert atomic_write(tmp_path / "a.bin", b"\x00\x01").read_bytes() == b"\x00\x01"
    assert atomic_write(tmp_path / "b.txt", "é\n").read_text(encoding="utf-8") == "é\n"
    path = atomic_write(tmp_path / "deep" / "c.bin", lambda handle: handle.write(b"xyz"))
    assert path.read_bytes() == b"xyz"  # the directory was made
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask  # as open(..., "w") makes it
    assert sorted(os.listdir(tmp_path)) == ["a.bin", "b.txt", "deep"]


def test_a_failing_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"old")

    def half(handle):
        handle.write(b"new but not all of it")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match=r"No space left on device: .*weights\.bin"):
        atomic_write(path, half)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["weights.bin"]
    assert stale_temporaries(tmp_path, "weights.bin") == []


def test_no_clobber_refuses_an_existing_file(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("mine")
    with pytest.raises(FileExistsError, match=r"a\.txt already exists"):
        atomic_write(path, "theirs", no_clobber=True)
    assert path.read_text() == "mine"
    assert atomic_write(tmp_path / "b.txt", "new", no_clobber=True).read_text() == "new"
    assert sorted(os.listdir(tmp_path)) == ["a.txt", "b.txt"]


def test_no_clobber_loses_no_race(tmp_path, monkeypatch):
    path = tmp_path / "a.txt"

    def racing(handle):  # another writer creates the file while this one writes
        path.write_text("the other writer's")
        handle.write(b"ours")

    with pytest.raises(FileExistsError, match=r"a\.txt already exists"):
        atomic_write(path, racing, no_clobber=True)
    assert path.read_text() == "the other writer's"
    assert os.listdir(tmp_path) == ["a.txt"]


def test_no_clobber_without_hard_links(tmp_path, monkeypatch):
    def no_links(source, target):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(_io.os, "link", no_links)
    path = atomic_write(tmp_path / "a.txt", "first", no_clobber=True)
    assert path.read_text() == "first"
    with pytest.raises(FileExistsError, match=r"a\.txt already exists"):
        atomic_write(path, "second", no_clobber=True)
    assert path.read_text() == "first"
    assert os.listdir(tmp_path) == ["a.txt"]


def test_without_make_parents_a_missing_directory_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"directory .*missing does not exist"):
        atomic_write(tmp_path / "missing" / "a.txt", "x", make_parents=False)
    assert os.listdir(tmp_path) == []
