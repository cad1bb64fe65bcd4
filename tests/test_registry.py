"""``attnlab.registry.Registry``: register, look up, list, refuse."""

import pytest

from attnlab.registry import ATTENTION, FFNS, NORMS, POSITIONS, PRESETS, TASKS, Registry


def test_register_directly_and_as_a_decorator():
    things = Registry("thing")
    things.register("one", 1, help="the first")

    @things.register("two")
    def two():
        """The second, from its docstring.

        More text that is not the help line.
        """

    assert things.get("one") == 1
    assert things.get("two") is two
    assert things.names() == ["one", "two"]
    assert [(e.name, e.help) for e in things.entries()] == [
        ("one", "the first"), ("two", "The second, from its docstring.")]
    assert "one" in things
    assert "three" not in things
    assert len(things) == 2


def test_a_name_registers_once():
    things = Registry("thing")
    things.register("one", 1)
    with pytest.raises(ValueError, match="thing 'one' is already registered"):
        things.register("one", 2)
    assert things.get("one") == 1


@pytest.mark.parametrize("name", ["three", "", None, 1, "ONE"])
def test_unknown_names_list_the_valid_ones(name):
    things = Registry("thing")
    things.register("one", 1)
    things.register("two", 2)
    with pytest.raises(ValueError, match=rf"unknown thing {name!r}; choose from: one, two$"):
        things.get(name)


def test_the_package_registries_are_filled_and_described():
    import attnlab.config  # noqa: F401  (fills attention, positions, norms, feed-forwards)
    import attnlab.models  # noqa: F401  (fills the presets)
    import attnlab.tasks  # noqa: F401

    for registry in (ATTENTION, POSITIONS, NORMS, FFNS, TASKS, PRESETS):
        assert len(registry) > 0, registry.kind
        assert all(entry.help for entry in registry.entries()), registry.kind
