import pytest
import torch

import attnlab.positional as positional
from attnlab.registry import POSITIONS

EXPECTED = {"sinusoidal": "absolute", "learned": "absolute", "rotary": "rotary", "alibi": "bias"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_registered_with_kind_and_help(name):
    cls = POSITIONS.get(name)
    assert cls.kind == EXPECTED[name]
    assert cls.__name__ in positional.__all__
    entry = next(e for e in POSITIONS.entries() if e.name == name)
    assert entry.help
    assert "\n" not in entry.help


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_registered_schemes_build_and_run(name):
    if EXPECTED[name] == "absolute":
        out = POSITIONS.get(name)(16, 6)(torch.zeros(2, 5, 6), offset=3)
        assert out.shape == (2, 5, 6)
    elif EXPECTED[name] == "rotary":
        assert POSITIONS.get(name)(6)(torch.zeros(2, 3, 5, 6)).shape == (2, 3, 5, 6)
    else:
        assert POSITIONS.get(name)(3)(5, 7).shape == (3, 5, 7)


def test_unknown_scheme_lists_the_valid_ones():
    with pytest.raises(
        ValueError, match=r"unknown positional scheme 'none'; choose from: .*rotary"
    ):
        POSITIONS.get("none")
