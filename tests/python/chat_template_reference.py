"""Chat templates rendered the way Hugging Face ``transformers`` renders them (jinja2).

``transformers`` compiles a model's ``chat_template`` in an immutable sandboxed jinja2
environment with ``trim_blocks`` and ``lstrip_blocks``, the ``loopcontrols`` extension,
a ``raise_exception`` global and a ``tojson`` filter over ``json.dumps``; this module
does the same, and holds the cases (templates x conversations) whose renderings are
committed in ``fixtures/chat_template_cases.json`` for realizar's Rust test.

Regenerate the fixture with ``python tests/python/chat_template_reference.py --write``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, cast

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

FIXTURE = Path(__file__).parent / "fixtures" / "chat_template_cases.json"

# SmolLM2-135M-Instruct's template, as its GGUF file's tokenizer.chat_template holds it
# (real newlines inside the Jinja string literals; test_realizar_chat_template.py checks
# it against the file).
SMOLLM2 = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# Whitespace control: block tags on their own indented lines (trim_blocks/lstrip_blocks
# decide every newline here), loop.last, bos/eos tokens.
CHATML_INDENTED = """{{ bos_token }}
{% for message in messages %}
    {% if message.role == 'system' %}
<|system|>{{ message.content }}
    {% else %}
<|{{ message.role }}|>
{{ message.content }}{% if not loop.last %}{{ eos_token }}{% endif %}

    {% endif %}
{% endfor %}
{% if add_generation_prompt %}
<|assistant|>
{% endif %}
"""

# Llama-2 style: role alternation enforced with raise_exception, Python string methods.
LLAMA2 = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'].strip() %}{% else %}"
    "{% set loop_messages = messages %}{% set system_message = '' %}{% endif %}"
    "{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}"
    "{% if loop.index0 == 0 and system_message %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' ' + content.strip() + ' ' + eos_token }}"
    "{% endif %}{% endfor %}"
)

# tojson as transformers defines it (Python separators, no HTML escaping), loop controls.
TOJSON = (
    "{% for m in messages %}{% if m.role == 'system' %}{% continue %}{% endif %}"
    "{{ m | tojson }}\n{% endfor %}{{ messages[-1] | tojson(indent=2) }}"
    "{% if add_generation_prompt %}\nnext:{% endif %}"
)

TEMPLATES = {
    "smollm2": SMOLLM2,
    "chatml_indented": CHATML_INDENTED,
    "llama2": LLAMA2,
    "tojson": TOJSON,
}

CONVERSATIONS: dict[str, list[dict[str, str]]] = {
    "user_only": [{"role": "user", "content": "What is the capital of France?"}],
    "system_user": [
        {"role": "system", "content": "  You answer in one word.  "},
        {"role": "user", "content": "Capital of Japan?"},
    ],
    "multi_turn": [
        {"role": "user", "content": "Hi!"},
        {"role": "assistant", "content": "Hello. How can I help?"},
        {"role": "user", "content": "Tell me a joke\nabout cats."},
    ],
    "unicode_and_braces": [
        {"role": "user", "content": 'Grüße 你好 👨‍👩‍👧 "quoted" <tag> & {{ not code }} {% raw %}'},
    ],
    "empty_content": [{"role": "user", "content": ""}],
    "not_alternating": [
        {"role": "user", "content": "one"},
        {"role": "user", "content": "two"},
    ],
}


def render(template: str, messages: list[dict[str, str]], add_generation_prompt: bool) -> str:
    """Render as transformers' ``apply_chat_template`` does (raises on raise_exception)."""

    def raise_exception(message: str) -> None:
        raise jinja2.exceptions.TemplateError(message)

    def tojson(
        x: Any,
        ensure_ascii: bool = False,
        indent: Any = None,
        separators: Any = None,
        sort_keys: bool = False,
    ) -> str:
        return json.dumps(
            x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
        )

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = cast(Any, raise_exception)
    return env.from_string(template).render(
        messages=messages,
        add_generation_prompt=add_generation_prompt,
        bos_token="<s>",
        eos_token="</s>",
    )


def cases() -> list[dict[str, Any]]:
    """Every template x conversation x add_generation_prompt, with jinja2's output (or
    ``error`` when the template raises)."""
    out = []
    for tname, template in TEMPLATES.items():
        for cname, messages in CONVERSATIONS.items():
            for agp in (False, True):
                case: dict[str, Any] = {
                    "name": f"{tname}/{cname}/{'gen' if agp else 'nogen'}",
                    "template": template,
                    "messages": messages,
                    "add_generation_prompt": agp,
                    "bos_token": "<s>",
                    "eos_token": "</s>",
                }
                try:
                    case["expected"] = render(template, messages, agp)
                except jinja2.exceptions.TemplateError as e:
                    case["error"] = str(e)
                out.append(case)
    return out


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        FIXTURE.write_text(
            json.dumps(cases(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
        )
        print(f"wrote {FIXTURE}")
    else:
        print(__doc__)
