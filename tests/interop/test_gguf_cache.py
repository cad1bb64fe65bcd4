"""The GGUF weight cache: a hit skips the file, anything doubtful is rebuilt, never trusted.

Small GGUF files written here (tests/gguf_files.py); each test gets its own
cache folder through ``$ATTNLAB_CACHE_DIR``.
"""

import os
import warnings

import pytest
import torch

from gguf_files import hf_llama, write_gguf

pytest.importorskip("gguf")
pytest.importorskip("transformers")

from attnlab.cli.model_ref import load_model  # noqa: E402
from attnlab.interop import gguf_cache, load_gguf  # noqa: E402
from attnlab.interop import gguf_model as gguf_model_module  # noqa: E402
from attnlab.interop.gguf_cache import GGUFCacheWarning  # noqa: E402


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh, empty cache folder, the cache switched on."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("ATTNLAB_CACHE_DIR", str(folder))
    monkeypatch.delenv("ATTNLAB_NO_CACHE", raising=False)
    return folder


@pytest.fixture
def source(tmp_path):
    return write_gguf(tmp_path / "tiny.gguf", hf_llama(kv_heads=2, tied=True))


def entries(folder):
    return sorted((folder / "gguf").glob("*.safetensors")) if (folder / "gguf").exists() else []


def same_weights(a, b):
    sa, sb = a.model.state_dict(), b.model.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_miss_writes_an_entry_and_a_hit_reads_only_it(cache, source, monkeypatch):
    uncached = load_gguf(source, cache=False)
    assert entries(cache) == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a miss is silent
        first = load_gguf(source)
    [entry] = entries(cache)
    assert not list(entry.parent.glob(".*.tmp"))  # no temporary file left
    assert entry.name == f"tiny-{gguf_cache.content_key(source)[:16]}.safetensors"
    assert same_weights(first, uncached)

    def forbidden(*args, **kwargs):
        raise AssertionError("the GGUF was read although the cache holds it")
    monkeypatch.setattr(gguf_model_module, "read_gguf", forbidden)
    monkeypatch.setattr(gguf_model_module, "dequantize", forbidden)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hit = load_gguf(source)
    assert same_weights(hit, uncached)
    assert hit.model.lm_head.weight is hit.model.embed.tokens.weight  # still tied
    assert hit.model.config == uncached.model.config
    assert hit.tokenizer.encode("the then") == uncached.tokenizer.encode("the then")
    assert hit.render([{"role": "user", "content": "hi"}]) == uncached.render(
        [{"role": "user", "content": "hi"}])
    assert hit.metadata == uncached.metadata
    ids = torch.tensor([[3, 50, 7, 99, 12]])
    with torch.no_grad():
        assert torch.equal(hit.model(ids), uncached.model(ids))


def test_other_dtypes_come_from_the_same_entry(cache, source):
    direct = load_gguf(source, dtype=torch.float64, cache=False)
    load_gguf(source)  # writes the float32 entry
    hit = load_gguf(source, dtype=torch.float64)
    assert hit.model.embed.tokens.weight.dtype == torch.float64
    assert same_weights(hit, direct)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "header"])
def test_a_corrupt_entry_is_ignored_and_rebuilt(cache, source, damage):
    reference = load_gguf(source)
    [entry] = entries(cache)
    data = entry.read_bytes()
    if damage == "truncated":
        entry.write_bytes(data[: len(data) - 1000])
    elif damage == "garbage":
        entry.write_bytes(os.urandom(len(data)))
    elif damage == "empty":
        entry.write_bytes(b"")
    else:  # the JSON header cut short, the length prefix kept
        entry.write_bytes(data[:8] + data[8:60] + b"}" * (len(data) - 60))
    with pytest.warns(GGUFCacheWarning, match=r"ignored \(.*\); rebuilding it from tiny.gguf"):
        rebuilt = load_gguf(source)
    assert same_weights(rebuilt, reference)
    assert entries(cache) == [entry]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # rebuilt: the next load hits
        assert same_weights(load_gguf(source), reference)


def test_an_entry_with_a_wrong_shape_or_key_is_not_trusted(cache, source):
    from safetensors import safe_open
    from safetensors.torch import save_file

    reference = load_gguf(source)
    [entry] = entries(cache)
    with safe_open(entry, framework="pt") as handle:
        header = handle.metadata()
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118
    wrong = dict(tensors, **{"blk.0.attn_q.weight": tensors["blk.0.attn_q.weight"][:, :-1]})
    save_file({k: v.contiguous() for k, v in wrong.items()}, entry, metadata=header)
    with pytest.warns(GGUFCacheWarning, match=r"blk\.0\.attn_q\.weight is torch\.float32"):
        assert same_weights(load_gguf(source), reference)
    save_file(tensors, entry, metadata=dict(header, key="0" * 64))
    with pytest.warns(GGUFCacheWarning, match="not the entry of this file"):
        assert same_weights(load_gguf(source), reference)
    save_file({k: v.double() for k, v in tensors.items()}, entry, metadata=header)
    with pytest.warns(GGUFCacheWarning, match="float64"):
        assert same_weights(load_gguf(source), reference)
    fewer = {k: v for k, v in tensors.items() if k != "output_norm.weight"}
    save_file(fewer, entry, metadata=header)
    with pytest.warns(GGUFCacheWarning, match="not the source's"):
        assert same_weights(load_gguf(source), reference)


def test_a_changed_source_file_is_a_miss(cache, tmp_path):
    path = tmp_path / "model.gguf"
    write_gguf(path, hf_llama(seed=0))
    old = load_gguf(path)
    write_gguf(path, hf_llama(seed=1))  # same name, new content
    fresh = load_gguf(path, cache=False)
    assert not same_weights(fresh, old)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert same_weights(load_gguf(path), fresh)
    assert len(entries(cache)) == 2  # one per content


def test_an_unwritable_cache_folder_still_loads(tmp_path, monkeypatch, source):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would be")
    monkeypatch.setenv("ATTNLAB_CACHE_DIR", str(blocker))
    with pytest.warns(GGUFCacheWarning, match="not written to .*; loading without it"):
        loaded = load_gguf(source, cache=True)
    assert same_weights(loaded, load_gguf(source, cache=False))


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_cache_folder_still_loads(tmp_path, monkeypatch, source):
    folder = tmp_path / "ro"
    (folder / "gguf").mkdir(parents=True)
    (folder / "gguf").chmod(0o555)
    monkeypatch.setenv("ATTNLAB_CACHE_DIR", str(folder))
    try:
        with pytest.warns(GGUFCacheWarning, match="PermissionError"):
            loaded = load_gguf(source, cache=True)
    finally:
        (folder / "gguf").chmod(0o755)
    assert same_weights(loaded, load_gguf(source, cache=False))


def test_opting_out(cache, source, monkeypatch):
    load_gguf(source, cache=False)
    assert entries(cache) == []
    monkeypatch.setenv("ATTNLAB_NO_CACHE", "1")
    load_gguf(source)
    assert entries(cache) == []
    load_gguf(source, cache=True)  # the argument wins over the variable
    assert len(entries(cache)) == 1
    with pytest.raises(TypeError, match="cache must be True, False or None, got 'yes'"):
        load_gguf(source, cache="yes")


def test_cache_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("ATTNLAB_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert gguf_cache.cache_dir() == tmp_path / "xdg" / "attnlab"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert gguf_cache.cache_dir() == tmp_path / "home" / ".cache" / "attnlab"
    monkeypatch.setenv("ATTNLAB_CACHE_DIR", str(tmp_path / "mine"))
    assert gguf_cache.cache_dir() == tmp_path / "mine"
    for value, on in [("", True), ("0", True), ("1", False), ("yes", False)]:
        monkeypatch.setenv("ATTNLAB_NO_CACHE", value)
        assert gguf_cache.cache_enabled() is on


def test_bad_files_are_still_refused_with_the_cache_on(cache, tmp_path):
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGML" + bytes(100))
    with pytest.raises(ValueError, match="not a GGUF file"):
        load_gguf(path)
    with pytest.raises(FileNotFoundError):
        load_gguf(tmp_path / "absent.gguf")
    assert entries(cache) == []


def test_the_cli_says_it_in_one_line(cache, source, capsys):
    load_gguf(source)
    [entry] = entries(cache)
    entry.write_bytes(b"not safetensors")
    load_model(str(source), device="cpu")
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("attnlab: warning: GGUF cache entry"), err
