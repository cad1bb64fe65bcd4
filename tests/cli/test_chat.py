"""``attnlab chat``: piped input, context trimming, commands, bad input.

These run a tiny random Llama written as a GGUF file (context 64 tokens), so
they test the loop, not the answers; test_chat_terminal.py talks to SmolLM2
through a pseudo-terminal.
"""

import io
import sys

import pytest
import torch

pytest.importorskip("gguf")
pytest.importorskip("transformers")

from attnlab.cli.chat_session import ChatSession, Sampling  # noqa: E402
from attnlab.cli.main import main  # noqa: E402
from attnlab.interop import load_gguf  # noqa: E402
from attnlab.models.generation import sample_next  # noqa: E402
from gguf_files import TOKENS, hf_llama, write_gguf  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_gguf(tmp_path_factory.mktemp("chat") / "tiny.gguf", hf_llama(), max_len=64)


@pytest.fixture
def scripted(monkeypatch):
    """Every answer is " the the" then <|im_end|>: the random model's own words hold newlines."""
    def tokens(self, ids):
        yield from [TOKENS.index("Ġthe")] * 2 + [TOKENS.index("<|im_end|>")]
    monkeypatch.setattr(ChatSession, "_tokens", tokens)


def chat(monkeypatch, capsys, lines, *argv):
    monkeypatch.setattr(sys, "stdin", io.StringIO("".join(f"{line}\n" for line in lines)))
    status = main(["chat", *map(str, argv)])
    return status, capsys.readouterr()


def test_piped_lines_are_answered_until_the_input_ends(tiny, scripted, monkeypatch, capsys):
    status, out = chat(monkeypatch, capsys, ["hi", "", "the end"], tiny,
                       "--max_new_tokens", "3")
    assert status == 0
    assert "loaded in" in out.err
    assert out.out == " the the\n the the\n"  # one answer per non-empty line, nothing else
    assert "> " not in out.out  # no prompt without a terminal


def test_quit_ends_before_the_input_does(tiny, scripted, monkeypatch, capsys):
    status, out = chat(monkeypatch, capsys, ["hi", ":quit", "never answered"], tiny,
                       "--max_new_tokens", "2")
    assert status == 0
    assert out.out == " the the\n"


def test_old_turns_are_dropped_with_a_note(tiny, scripted, monkeypatch, capsys):
    lines = ["the the the", "then the", "the then", "hi", "then"]
    status, out = chat(monkeypatch, capsys, lines, tiny, "--max_new_tokens", "8")
    assert status == 0
    assert "note: dropped the 1 oldest exchange" in out.out
    assert "to fit the context of 64 tokens" in out.out


def test_a_message_longer_than_the_context_is_refused(tiny, scripted, monkeypatch, capsys):
    status, out = chat(monkeypatch, capsys, ["the " * 50, "hi"], tiny, "--max_new_tokens", "2")
    assert status == 0
    first, *rest = out.out.splitlines()
    assert first.startswith("error: the message is ")
    assert "exceeds the model's context of 64 tokens" in first
    assert rest == [" the the"]  # the next line is answered


def test_attn_and_show_commands(tiny, monkeypatch, capsys, tmp_path):
    status, out = chat(monkeypatch, capsys,
                       [":attn", "hi", ":attn", ":attn 1 3", ":attn 2 0", f":show {tmp_path}"],
                       tiny, "--max_new_tokens", "4")
    assert status == 0
    text = out.out
    assert "nothing answered yet" in text
    assert "mean over every layer and head" in text
    assert "mean over layer 1, head 3" in text
    assert "error: LAYER must lie in [0, 2) and HEAD in [0, 4); got 2 0" in text
    assert (tmp_path / "attention.html").is_file()
    assert (tmp_path / "attention.png").is_file()  # 2 layers: the labelled grid


def test_session_keeps_turns_and_stops_at_end_of_turn(tiny):
    loaded = load_gguf(tiny)
    session = ChatSession(loaded, Sampling(max_new_tokens=5))
    ids, notes = session.prompt("hi")
    assert notes == []
    assert ids == loaded.tokenizer.encode(loaded.render([{"role": "user", "content": "hi"}]))
    answer = "".join(session.reply("hi", ids))
    assert session.messages == [{"role": "user", "content": "hi"},
                                {"role": "assistant", "content": answer}]
    # the greedy stream is the model's own greedy generation, up to a stop token
    ref = loaded.model.generate(torch.tensor([ids]), 5, temperature=0)[0, len(ids):].tolist()
    got = session.last.ids[len(ids):]
    assert got == ref[:len(got)]
    assert len(got) == 5 or ref[len(got)] in session.stop_ids


def test_stopping_a_stream_keeps_the_partial_answer(tiny):
    session = ChatSession(load_gguf(tiny), Sampling(temperature=1.0, max_new_tokens=30, seed=3))
    ids, _ = session.prompt("hi")
    stream = session.reply("hi", ids)
    first = next(stream)
    stream.close()  # what Ctrl-C does
    assert session.messages[-1]["content"].startswith(first)
    assert len(session.last.ids) < len(ids) + 30


def test_sampling_seed_repeats(tiny):
    loaded = load_gguf(tiny)
    answers = []
    for _ in range(2):
        session = ChatSession(loaded, Sampling(temperature=1.0, top_p=0.9, max_new_tokens=6,
                                               seed=7))
        ids, _ = session.prompt("hi")
        "".join(session.reply("hi", ids))
        answers.append(session.last.ids)
    assert answers[0] == answers[1]
    assert len(answers[0]) > len(ids)


def test_top_p_keeps_the_smallest_nucleus():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    seen = {int(sample_next(logits, 1.0, None, torch.Generator().manual_seed(s), top_p=0.75))
            for s in range(200)}
    assert seen == {0, 1}  # 0.5 < 0.75 <= 0.5 + 0.3
    seen = {int(sample_next(logits, 1.0, None, torch.Generator().manual_seed(s), top_p=0.5))
            for s in range(50)}
    assert seen == {0}
    seen = {int(sample_next(logits, 1.0, None, torch.Generator().manual_seed(s), top_p=1.0))
            for s in range(400)}
    assert seen == {0, 1, 2, 3}


@pytest.mark.parametrize(("argv", "needles"), [
    (["nope.gguf"], ["no model 'nope.gguf'", "smollm2"]),
    (["--top_p", "0"], ["--top_p must be"]),
    (["--temperature", "-1"], ["--temperature must be"]),
    (["--quantize", "int4"], ["--quantize", "int4", "int8"]),
])
def test_bad_input_is_one_line_and_exit_2(monkeypatch, capsys, one_line_error, argv, needles):
    status, out = chat(monkeypatch, capsys, ["hi"], *argv)
    assert status == 2
    one_line_error(out.err, *needles)


def test_bad_files_are_one_line_and_exit_2(tiny, tmp_path, monkeypatch, capsys, one_line_error):
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(tiny.read_bytes()[:-100])
    status, out = chat(monkeypatch, capsys, ["hi"], cut)
    assert status == 2
    one_line_error(out.err, "is truncated")
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"PK\x03\x04" + bytes(60))
    status, out = chat(monkeypatch, capsys, ["hi"], fake)
    assert status == 2
    one_line_error(out.err, "is not a GGUF file")


def test_ctrl_c_before_the_first_token_keeps_the_session(tiny, scripted, monkeypatch, capsys):
    real = ChatSession.prompt
    calls = []

    def interrupted_once(self, question):
        calls.append(question)
        if len(calls) == 1:
            raise KeyboardInterrupt
        return real(self, question)

    monkeypatch.setattr(ChatSession, "prompt", interrupted_once)
    status, out = chat(monkeypatch, capsys, ["first", "second"], tiny, "--max_new_tokens", "3")
    assert status == 0
    assert out.out == " [stopped]\n the the\n"


def test_quantize_int8_answers_with_the_int8_step_and_says_so(tiny, monkeypatch, capsys):
    from attnlab.models.decoder import DecoderLM

    calls = []
    real = DecoderLM.stream

    def spy(self, *args, **kwargs):
        calls.append(kwargs.get("quantize"))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(DecoderLM, "stream", spy)
    status, out = chat(monkeypatch, capsys, ["hi"], tiny, "--max_new_tokens", "3",
                       "--quantize", "int8")
    assert status == 0
    assert calls == ["int8"]  # the model decoded with int8 weights
    assert "; compiled decode step (the first answer waits for the compile); int8 weights " \
           "after the prompt (approximate)" in out.err  # --quantize implies --compile
    assert len(out.out) >= 2  # an answer (a random model's words, here newlines) and its end
