import pytest
import torch
from torch import nn

from attnlab.interop.state_dict import copy_weights, split_fused


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(3, 5)
        self.norm = nn.LayerNorm(5)


class Net(nn.Module):
    """Two layers, a buffer and a head tied to the embedding."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(7, 3)
        self.layers = nn.ModuleList([Block(), Block()])
        self.head = nn.Linear(3, 7, bias=False)
        self.head.weight = self.embed.weight
        self.register_buffer("scale", torch.ones(2))


TABLE = [
    ("embed.weight", "wte"),
    ("layers.{i}.proj.weight", "h.{i}.fc.w"),
    ("layers.{i}.proj.bias", "h.{i}.fc.b"),
    ("layers.{i}.norm.weight", "h.{i}.ln.g"),
    ("layers.{i}.norm.bias", "h.{i}.ln.b"),
    ("scale", "scale"),
]


def foreign(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {"wte": torch.randn(7, 3, generator=g), "scale": torch.randn(2, generator=g)}
    for i in range(2):
        out[f"h.{i}.fc.w"] = torch.randn(3, 5, generator=g)  # stored (in, out)
        out[f"h.{i}.fc.b"] = torch.randn(5, generator=g)
        out[f"h.{i}.ln.g"] = torch.randn(5, generator=g)
        out[f"h.{i}.ln.b"] = torch.randn(5, generator=g)
    return out


def test_table_with_layer_templates_and_transposes_copies_everything():
    net, src = Net(), foreign()
    report = copy_weights(net, src, TABLE, transpose={"h.{i}.fc.w"})
    for i in range(2):
        assert torch.equal(net.layers[i].proj.weight, src[f"h.{i}.fc.w"].t())
        assert torch.equal(net.layers[i].norm.bias, src[f"h.{i}.ln.b"])
    assert torch.equal(net.head.weight, src["wte"])  # tied: set through the embedding
    assert torch.equal(net.scale, src["scale"])
    assert ("layers.1.proj.weight", "h.1.fc.w") in report.copied
    assert set(report.transposed) == {"h.0.fc.w", "h.1.fc.w"}
    assert report.ignored == ()


def test_callable_table():
    net, src = Net(), foreign()
    renames = dict(TABLE)

    def mapper(name: str) -> str | None:
        for ours, theirs in renames.items():
            for i in ("0", "1"):
                if ours.replace("{i}", i) == name:
                    return theirs.replace("{i}", i)
        return None

    copy_weights(net, src, mapper, transpose={"h.0.fc.w", "h.1.fc.w"})
    assert torch.equal(net.layers[1].proj.weight, src["h.1.fc.w"].t())


def test_shape_mismatch_names_both_keys_and_shapes_and_copies_nothing():
    net, src = Net(), foreign()
    before = net.layers[0].proj.weight.clone()
    with pytest.raises(ValueError, match=r"'layers.0.proj.weight' \(5, 3\) <- source "
                                         r"'h.0.fc.w' \(3, 5\)"):
        copy_weights(net, src, TABLE)  # transpose forgotten
    assert torch.equal(net.layers[0].proj.weight, before)


def test_missing_source_key_is_named():
    src = foreign()
    del src["h.1.ln.g"]
    with pytest.raises(ValueError, match=r"'layers.1.norm.weight' needs source 'h.1.ln.g'"):
        copy_weights(Net(), src, TABLE, transpose={"h.{i}.fc.w"})


def test_unused_source_keys_raise_unless_ignored():
    src = foreign()
    src["h.0.attn.bias"] = torch.zeros(4)
    src["h.1.attn.bias"] = torch.zeros(4)
    unused = r"2 source tensor\(s\) unused: h.0.attn.bias, h.1.attn.bias"
    with pytest.raises(ValueError, match=unused):
        copy_weights(Net(), src, TABLE, transpose={"h.{i}.fc.w"})
    report = copy_weights(Net(), src, TABLE, transpose={"h.{i}.fc.w"},
                          ignore_source=["h.*.attn.bias"])
    assert report.ignored == ("h.0.attn.bias", "h.1.attn.bias")


def test_extra_foreign_layer_is_unused():
    src = foreign()
    src.update({k.replace("h.1.", "h.2."): v for k, v in src.items() if k.startswith("h.1.")})
    with pytest.raises(ValueError, match=r"4 source tensor\(s\) unused: h.2.fc.b, h.2.fc.w"):
        copy_weights(Net(), src, TABLE, transpose={"h.{i}.fc.w"})


def test_unset_target_is_named():
    table = [entry for entry in TABLE if entry[0] != "scale"]
    with pytest.raises(ValueError, match=r"1 target tensor\(s\) left unset: scale"):
        copy_weights(Net(), foreign(), table, transpose={"h.{i}.fc.w"},
                     ignore_source=["scale"])


def test_writing_a_tied_tensor_twice_raises():
    src = foreign()
    src["lm_head"] = src["wte"].clone()
    with pytest.raises(ValueError, match=r"'head.weight' <- 'lm_head' writes a tensor already "
                                         r"set from 'wte'"):
        copy_weights(Net(), src, [*TABLE, ("head.weight", "lm_head")], transpose={"h.{i}.fc.w"})


def test_table_errors():
    src = foreign()
    with pytest.raises(ValueError, match=r"table entry 'blocks.\{i\}.w' matches no target key"):
        copy_weights(Net(), src, [*TABLE, ("blocks.{i}.w", "x.{i}")])
    with pytest.raises(ValueError, match=r"table names target 'nothing', which the model lacks"):
        copy_weights(Net(), src, [*TABLE, ("nothing", "wte")], transpose={"h.{i}.fc.w"})
    with pytest.raises(ValueError, match=r"transpose names \['h.\{i\}.fc.weight'\], which no "):
        copy_weights(Net(), src, TABLE, transpose={"h.{i}.fc.weight"})
    with pytest.raises(ValueError, match=r"cannot transpose 'h.0.fc.b': shape \(5,\)"):
        copy_weights(Net(), src, TABLE, transpose={"h.{i}.fc.w", "h.{i}.fc.b"})


def test_split_fused_names_parts_in_order():
    fused = torch.arange(24.0).view(2, 12)
    src = {"h.0.qkv": fused, "h.1.qkv": fused + 100, "other": torch.zeros(1)}
    parts = split_fused(src, "h.{i}.qkv", ("q", "k", "v"), dim=1)
    assert sorted(parts) == ["h.0.qkv:k", "h.0.qkv:q", "h.0.qkv:v",
                             "h.1.qkv:k", "h.1.qkv:q", "h.1.qkv:v", "other"]
    assert torch.equal(parts["h.1.qkv:k"], fused[:, 4:8] + 100)
    assert "h.0.qkv" in src  # input untouched


def test_split_fused_errors():
    with pytest.raises(ValueError, match=r"no source key matches 'h.\{i\}.qkv'"):
        split_fused({"x": torch.zeros(3)}, "h.{i}.qkv", ("q", "k", "v"))
    with pytest.raises(ValueError, match=r"'w' has size 4 along dim 0, not divisible into 3"):
        split_fused({"w": torch.zeros(4)}, "w", ("q", "k", "v"))
