"""Labelled customer messages to Kestrel Home Systems: the prompt-engineering sets of Course 4.

Two tasks a support desk gives a language model, each with its right answers:

- **routing** (:func:`routing`): which queue a message belongs to, one of :data:`QUEUES`
  (``returns``, ``shipping``, ``repair``, ``privacy``), written the way customers write (a
  complaint, a question, a story; the queue's own word seldom appears);
- **extraction** (:func:`error_reports`): from a message reporting a fault, the product line
  and the error code shown, as the JSON object ``{"product_line": ..., "error_code": ...}``
  (:data:`ERROR_REPORT_SCHEMA`), the code and product taken from the knowledge base's own
  tables so labels agree with the manuals.

Deterministic (``random.Random(seed)``, no clock), and like ``knowledge_base.py`` free of
project imports other than its neighbour in ``data/``, so a Databricks notebook in a Git folder
imports it the same way. A split's examples (the few-shot demonstrations) and its test items
never share a message.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import knowledge_base as _kb

QUEUES = ("returns", "shipping", "repair", "privacy")

_ROUTING: dict[str, list[str]] = {
    "returns": [
        "I want to send back the {product} I bought last week, it is not what I expected.",
        "How do I get my money back for the {product}? I changed my mind.",
        "The {product} was a gift and nobody here needs it. Can I return it for a refund?",
        "Can I exchange my {product} for a different colour? It is still in the box.",
        "I opened the {product} but never used it. Is it too late to give it back?",
        "Please refund my order, the {product} is too loud for our flat.",
        "What is the deadline to return a {product}? I bought it 20 days ago.",
        "I would like a refund for the {product}, do I need the original packaging?",
    ],
    "shipping": [
        "My {product} order still has not arrived and it has been ten days.",
        "Where is my parcel? The tracking for my {product} has not moved since Monday.",
        "Do you deliver the {product} to Canada, and how long does it take?",
        "The courier left my {product} at the wrong address. What now?",
        "How much is express delivery for a {product}?",
        "My package with the {product} came with the box crushed, is it still on its way?",
        "Can I change the delivery address for the {product} I ordered yesterday?",
        "When will my {product} be dispatched? The order page says processing.",
    ],
    "repair": [
        "My {product} stopped working this morning and will not turn on.",
        "The {product} makes a grinding noise and then switches off.",
        "My {product} shows an error light and keeps restarting.",
        "One of the parts on my {product} snapped off. Can someone fix it?",
        "The {product} worked fine for a year, now it does nothing when I press the button.",
        "My {product} is broken, the display is blank and it gets hot.",
        "The battery of my {product} dies after five minutes. Is this covered?",
        "Since the last update my {product} keeps freezing. It needs fixing.",
    ],
    "privacy": [
        "Please delete all the data my {product} has collected about my home.",
        "Who can see the recordings from my {product}? I do not want them shared.",
        "I want a copy of every piece of personal data you hold about me.",
        "Does the {product} send my location to third parties?",
        "How long do you keep the history from my {product} on your servers?",
        "Remove my account and everything linked to it, including the {product} logs.",
        "Is the audio from my {product} used to train anything? I never agreed to that.",
        "I did not consent to tracking. Stop collecting data from my {product}.",
    ],
}

_REPORTS = [
    "My {name} stopped and the display shows {code}. What should I do?",
    "Hi, the {name} keeps beeping with error {code} since this morning.",
    "Error {code} on my {name} again, third time this week.",
    "I get code {code} on the {name} every time I switch it on.",
    "The app says my {name} has a problem: {code}. Help!",
    "{code} is flashing on my {name}. Is it broken?",
    "After cleaning it, my {name} now shows {code}.",
    "What does {code} mean on a {name}? It just appeared.",
]

ERROR_REPORT_SCHEMA: dict = {
    "type": "object",
    "properties": {
        "product_line": {"type": "string", "enum": list(_kb.LINES)},
        "error_code": {"type": "string", "pattern": "^E[0-9]{2}$"},
    },
    "required": ["product_line", "error_code"],
    "additionalProperties": False,
}


def _product_names(seed: int) -> dict[str, list[str]]:
    """The catalogue's model names per product line (``knowledge_base``'s own generator)."""
    models = _kb._models(random.Random(seed))  # the one source of model names
    names: dict[str, list[str]] = {}
    for m in models:
        names.setdefault(m["line"], []).append(m["name"])
    return names


def _generic(line: str) -> str:
    return _kb.LINES[line]["kind"]


def routing(seed: int = 0) -> tuple[list[dict], list[dict]]:
    """``(examples, test)``: one demonstration per queue, and every other message labelled.

    Each item is ``{"text": ..., "label": <queue>}``; the test set is shuffled and holds
    28 messages (seven per queue).
    """
    rng = random.Random(seed)
    lines = list(_kb.LINES)
    examples, test = [], []
    for queue, templates in _ROUTING.items():
        order = templates[:]
        rng.shuffle(order)
        for i, template in enumerate(order):
            product = f"{_generic(rng.choice(lines))}"
            item = {"text": template.format(product=product), "label": queue}
            (examples if i == 0 else test).append(item)
    rng.shuffle(test)
    return examples, test


def error_reports(seed: int = 0, n: int = 40) -> list[dict]:
    """``n`` fault reports, each ``{"text": ..., "label": {"product_line", "error_code"}}``."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"n must be an int >= 0, got {n!r}")
    rng = random.Random(seed)
    names = _product_names(4)
    out = []
    for _ in range(n):
        line = rng.choice(list(_kb.LINES))
        code = rng.choice(_kb.LINES[line]["errors"])[0]
        name = rng.choice(names[line])
        text = rng.choice(_REPORTS).format(name=name, code=code)
        out.append({"text": text, "label": {"product_line": line, "error_code": code}})
    return out
