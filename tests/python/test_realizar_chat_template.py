"""The chat-template fixture realizar's Rust test reads is jinja2's own output.

crates/realizar/src/chat_template/tests.rs renders every case of
fixtures/chat_template_cases.json with minijinja and asserts byte equality; this test
re-renders the same cases with jinja2 (as transformers does) so the fixture cannot drift
from the reference, and checks that the SmolLM2 template in it is the one in the model
file (the server's prompts are checked end to end in test_realizar_llm_server.py).
"""

from __future__ import annotations

import json

import jinja2
import pytest

from chat_template_reference import FIXTURE, SMOLLM2, cases, render
from smollm2_reference import metadata


def test_fixture_is_jinja2s_rendering() -> None:
    committed = json.loads(FIXTURE.read_text(encoding="utf-8"))
    assert committed == cases()
    assert len(committed) >= 40
    assert any("error" in c for c in committed)


def test_smollm2_template_is_the_models() -> None:
    assert metadata()["tokenizer.chat_template"] == SMOLLM2


def test_smollm2_adds_its_default_system_turn() -> None:
    text = render(SMOLLM2, [{"role": "user", "content": "hi"}], True)
    assert text == (
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by "
        "Hugging Face<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    )


def test_raise_exception_raises() -> None:
    with pytest.raises(jinja2.exceptions.TemplateError, match="nope"):
        render("{{ raise_exception('nope') }}", [], False)
