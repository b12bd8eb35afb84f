"""The documentation of a fictional company, generated: the knowledge base of Course 4.

Kestrel Home Systems makes home robots and appliances. Its knowledge base has what a real
company's has, in plain text and markdown with headings and tables:

- **product manuals**, one per model (five product lines, twelve models each): overview, box
  contents, a specification table, setup, maintenance, an error-code table, warranty;
- **buying guides** per product line (a comparison table and a section per model);
- **FAQs** per product line;
- **release notes** per model (firmware versions with dated changes);
- **policies**: returns, shipping, warranty and Kestrel Care+, privacy and data retention,
  and the employee handbook (leave, expenses, remote work, security, IT support, conduct);
- **support articles**: how-to and troubleshooting notes that restate manual facts in other
  words (so lexical and semantic retrieval win on different questions).

Every fact comes from one table (:data:`LINES`, :data:`POLICY`, the seeded model specs),
so documents never contradict each other, and every **question** is labelled with the
passages that answer it: a passage is one markdown section (or one plain-text paragraph
block), with a stable id ``<doc_id>#<section>`` and its character range in the document.
Questions come in kinds that favour different retrievers: exact codes and model names
(lexical), paraphrases of policy facts (semantic), and both.

Deterministic: same seed, same bytes, on any machine (``random.Random`` only, no clock).
About 390,000 characters at the default seed: 374 documents, 1,406 passages, 123
questions; about 130 pages at 3,000 characters a page (see :func:`summary`). Like
``data/fraud_data.py``, this file has no project imports so a notebook in a Databricks Git
folder can import it from ``data/``; :func:`write` saves the documents as files plus
``passages.jsonl`` and ``questions.json`` (e.g. into a Unity Catalog Volume).
"""

from __future__ import annotations

import itertools
import json
import random
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

COMPANY = "Kestrel Home Systems"
SUPPORT_EMAIL = "support@kestrel.example"
SUPPORT_PHONE = "+1 555 0142"

# Product lines: the name stem, what it is, the warranty, the consumable and its interval,
# and the error codes every model of the line shares (code, meaning, fix).
LINES: dict[str, dict[str, Any]] = {
    "Sweep": {
        "kind": "robot vacuum",
        "warranty_years": 2,
        "consumable": "side brush",
        "interval_months": 6,
        "runtime_unit": "minutes of cleaning per charge",
        "errors": [
            ("E01", "the main brush is jammed", "remove the brush and cut away tangled hair"),
            ("E02", "a cliff sensor is dirty", "wipe the four cliff sensors with a dry cloth"),
            ("E03", "the dust bin is missing", "reinsert the dust bin until it clicks"),
            ("E04", "the battery is too hot", "let the robot cool for 30 minutes"),
            ("E05", "a wheel is stuck", "lift the robot and free the wheel of debris"),
            ("E06", "the robot cannot find the dock", "move the dock to a wall with 1 m clear"),
        ],
    },
    "Breeze": {
        "kind": "air purifier",
        "warranty_years": 3,
        "consumable": "HEPA filter",
        "interval_months": 12,
        "runtime_unit": "square metres of room coverage",
        "errors": [
            ("E11", "the filter is not seated", "open the rear cover and reseat the filter"),
            ("E12", "the particle sensor is blocked", "vacuum the sensor grille on the side"),
            ("E13", "the fan is obstructed", "switch off and remove objects from the outlet"),
            ("E14", "the filter life has expired", "replace the HEPA filter"),
        ],
    },
    "Ember": {
        "kind": "smart thermostat",
        "warranty_years": 5,
        "consumable": "backup battery",
        "interval_months": 24,
        "runtime_unit": "heating zones supported",
        "errors": [
            ("E21", "no power from the C wire", "check the C wire at the furnace board"),
            ("E22", "the temperature sensor failed", "contact support for a replacement"),
            ("E23", "Wi-Fi credentials were rejected", "re-enter the password in the app"),
            ("E24", "the heating relay is stuck", "switch off the breaker and call support"),
            ("E25", "the backup battery is low", "replace the CR2032 backup battery"),
        ],
    },
    "Watch": {
        "kind": "security camera",
        "warranty_years": 2,
        "consumable": "mounting seal",
        "interval_months": 36,
        "runtime_unit": "days of battery life",
        "errors": [
            ("E31", "the lens is obstructed", "clean the lens with the supplied cloth"),
            ("E32", "the SD card is full", "format the card in the app or enable loop mode"),
            ("E33", "the night vision LED failed", "contact support for a replacement"),
            ("E34", "the camera lost its cloud connection", "restart the camera and router"),
        ],
    },
    "Clear": {
        "kind": "water filter",
        "warranty_years": 1,
        "consumable": "carbon cartridge",
        "interval_months": 4,
        "runtime_unit": "litres filtered per cartridge",
        "errors": [
            ("E41", "the flow rate is low", "flush the new cartridge for 5 minutes"),
            ("E42", "a leak was detected", "close the inlet valve and tighten the fittings"),
            ("E43", "the cartridge is expired", "replace the carbon cartridge"),
        ],
    },
}

MODELS_PER_LINE = 12

# Company policies: every figure the documents and questions use.
POLICY: dict[str, Any] = {
    "return_days": 30,
    "restocking_fee_pct": 15,
    "refund_days": 14,
    "free_shipping_over": 75,
    "shipping": [
        ("Domestic standard", "3-5 business days", "$6.95"),
        ("Domestic express", "1-2 business days", "$18.00"),
        ("Canada", "5-8 business days", "$14.50"),
        ("European Union", "6-10 business days", "$24.00"),
        ("Rest of world", "10-20 business days", "$39.00"),
    ],
    "care_plus": [("1 year", "$29"), ("2 years", "$49"), ("3 years", "$69")],
    "care_plus_claims_per_year": 2,
    "footage_retention_days": 30,
    "account_deletion_days": 45,
    "pto_days": 25,
    "sick_days": 10,
    "parental_leave_weeks": 16,
    "carry_over_days": 5,
    "meal_caps": [
        ("Home city", "$40"),
        ("Domestic travel", "$65"),
        ("International travel", "$90"),
    ],
    "receipt_threshold": 25,
    "expense_submit_days": 30,
    "business_class_hours": 8,
    "remote_days_per_week": 3,
    "home_office_stipend": 500,
    "password_length": 14,
    "password_rotation": "only after a suspected compromise",
    "lock_minutes": 5,
    "gift_limit": 50,
    "it_sla": [
        ("P1 (outage)", "1 hour", "4 hours"),
        ("P2 (degraded)", "4 hours", "1 business day"),
        ("P3 (request)", "1 business day", "5 business days"),
    ],
}

SUFFIXES = ["S", "S", "Pro", "Pro", "Max", "Lite", "Mini", "Ultra"]
COLOURS = ["graphite", "white", "sage", "sand", "navy", "slate"]


@dataclass
class Document:
    doc_id: str
    title: str
    kind: str  # manual, release_notes, guide, faq, policy, support
    format: str  # md or txt
    text: str
    product: str | None = None
    line: str | None = None


@dataclass
class Passage:
    passage_id: str
    doc_id: str
    section: str
    start: int
    end: int
    text: str


@dataclass
class Question:
    question_id: str
    question: str
    answer: str
    passage_ids: list[str]
    kind: str  # lexical, semantic, both
    doc_id: str = ""


@dataclass
class KnowledgeBase:
    documents: list[Document]
    passages: list[Passage]
    questions: list[Question]
    products: list[dict] = field(default_factory=list)


def slug(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-")


def _models(rng: random.Random) -> list[dict]:
    out = []
    for line, info in LINES.items():
        for i in range(MODELS_PER_LINE):
            gen = 1 + i // 2
            suffix = "" if i % 2 == 0 else " " + SUFFIXES[(i // 2) % len(SUFFIXES)]
            name = f"Kestrel {line} {line[0]}{gen}{suffix}"
            runtime = {
                "Sweep": 60 + 15 * i + rng.randint(0, 10),
                "Breeze": 20 + 8 * i + rng.randint(0, 5),
                "Ember": 1 + i // 2,
                "Watch": 90 + 30 * i + rng.randint(0, 20),
                "Clear": 400 + 150 * i + 10 * rng.randint(0, 9),
            }[line]
            out.append(
                {
                    "name": name,
                    "line": line,
                    "sku": f"KHS-{line[:2].upper()}-{100 + 10 * i + rng.randint(0, 9)}",
                    "price": 49
                    + 30 * i
                    + {"Sweep": 200, "Breeze": 90, "Ember": 80}.get(line, 40)
                    + rng.choice([0, 10, 20]),
                    "weight_kg": round(0.4 + rng.random() * (4.0 if line == "Sweep" else 2.5), 1),
                    "power_w": rng.choice([12, 18, 24, 30, 45, 60]),
                    "noise_db": rng.randint(28, 62),
                    "runtime": runtime,
                    "release_year": 2019 + gen + rng.randint(0, 1),
                    "colour": rng.choice(COLOURS),
                    "app": "Kestrel Home app" + (" and Matter" if gen >= 3 else ""),
                    "firmware": [f"{gen}.{m}.{rng.randint(0, 9)}" for m in range(6 + i % 4)],
                    "warranty_years": info["warranty_years"] + (1 if "Pro" in name else 0),
                }
            )
    return out


def _sections_md(title: str, sections: list[tuple[str, str]]) -> str:
    parts = [f"# {title}\n"]
    parts += [f"\n## {h}\n\n{body.strip()}\n" for h, body in sections]
    return "".join(parts)


def _manual(p: dict) -> tuple[str, list[tuple[str, str]]]:
    info = LINES[p["line"]]
    errs = "\n".join(f"| {c} | {m} | {f.capitalize()}. |" for c, m, f in info["errors"])
    sections = [
        (
            "Overview",
            (
                f"The {p['name']} is a {info['kind']} by {COMPANY}, released in "
                f"{p['release_year']}. It works with the {p['app']}. This manual covers setup, "
                f"daily use, maintenance and troubleshooting."
            ),
        ),
        (
            "In the box",
            (
                f"- The {p['name']} ({p['colour']})\n- Power adapter ({p['power_w']} W)\n"
                f"- One spare {info['consumable']}\n- Quick start guide"
            ),
        ),
        (
            "Specifications",
            (
                "| specification | value |\n|---|---|\n"
                f"| SKU | {p['sku']} |\n| Price | ${p['price']} |\n"
                f"| Weight | {p['weight_kg']} kg |\n| Power | {p['power_w']} W |\n"
                f"| Noise | {p['noise_db']} dB |\n"
                f"| Rated capacity | {p['runtime']} {info['runtime_unit']} |\n"
                f"| Release year | {p['release_year']} |"
            ),
        ),
        (
            "Setup",
            (
                f"1. Unpack the {p['name']} and remove the protective film.\n"
                f"2. Connect the {p['power_w']} W adapter and wait for the status light to turn "
                "solid white.\n3. Open the Kestrel Home app, tap Add device and scan the code on "
                "the base.\n4. Choose your 2.4 GHz Wi-Fi network; 5 GHz networks are not supported."
            ),
        ),
        (
            "Maintenance",
            (
                f"Replace the {info['consumable']} every {info['interval_months']} months. "
                f"Genuine replacement parts are sold in the app and at kestrel.example/parts. "
                "Clean the housing with a soft, dry cloth; never use solvents."
            ),
        ),
        (
            "Troubleshooting",
            (
                "The status light blinks red and the app shows a code when something needs "
                f"attention.\n\n| code | meaning | what to do |\n|---|---|---|\n{errs}"
            ),
        ),
        ("Safety", _safety(p)),
        ("Using the app", _app_usage(p)),
        ("Accessories", _accessories(p)),
        (
            "Warranty",
            (
                f"The {p['name']} has a {p['warranty_years']}-year limited warranty from the date "
                f"of purchase. Kestrel Care+ extends it (see the warranty policy). Contact "
                f"{SUPPORT_EMAIL} or {SUPPORT_PHONE} with your SKU ({p['sku']}) and proof of "
                "purchase."
            ),
        ),
    ]
    return f"{p['name']} user manual", sections


SAFETY = [
    "Use only the supplied power adapter; third-party adapters can overheat the unit.",
    "Keep the device away from open flames, radiators and direct sunlight.",
    "Do not immerse the unit in water; clean it with a damp cloth only when unplugged.",
    "Children should not play with the device or its packaging.",
    "Unplug the device before opening any cover or replacing a part.",
    "If the housing is cracked or the cable is damaged, stop using the device and call support.",
    "Operate the device between 5 and 40 degrees Celsius.",
    "Keep ventilation openings clear by at least 10 cm.",
    "Recycle the device and its battery at a collection point, never with household waste.",
]

APP = [
    "Schedules: create up to 20 weekly schedules; each runs in the mode you pick.",
    "Modes: Eco saves energy, Standard balances speed and noise, Boost runs at full power.",
    "Sharing: invite up to five household members from Settings > Members.",
    "Notifications: choose which alerts reach your phone and set quiet hours.",
    "Energy report: the app shows daily and monthly consumption in kWh.",
    "Away mode: the device follows a reduced schedule while everyone is out.",
    "Voice assistants: link your account under Settings > Integrations.",
    "Firmware: updates download in the background and install when the device is idle.",
]


def _safety(p: dict) -> str:
    rng = random.Random(p["sku"])
    items = rng.sample(SAFETY, 6)
    return "Read these instructions before first use.\n\n" + "\n".join(f"- {x}" for x in items)


def _app_usage(p: dict) -> str:
    rng = random.Random(p["sku"] + "app")
    items = rng.sample(APP, 5)
    intro = (
        f"Everything the {p['name']} does can be controlled from the {p['app']}. "
        "Open the device card to see its status, consumable life and recent events."
    )
    return intro + "\n\n" + "\n".join(f"- {x}" for x in items)


def _accessories(p: dict) -> str:
    info = LINES[p["line"]]
    rng = random.Random(p["sku"] + "acc")
    rows = [
        (f"Replacement {info['consumable']}", f"${rng.choice([9, 12, 15, 19, 24, 29])}"),
        ("Wall mount kit", f"${rng.choice([14, 19, 25])}"),
        ("Spare power adapter", f"${rng.choice([19, 22, 29])}"),
        ("Travel case", f"${rng.choice([24, 32, 39])}"),
    ]
    table = "\n".join(f"| {a} | {b} |" for a, b in rows)
    return "| accessory | price |\n|---|---|\n" + table


def _release_notes(p: dict, rng: random.Random) -> tuple[str, list[tuple[str, str]]]:
    changes = [
        "improved Wi-Fi reconnection after router restarts",
        "faster app pairing",
        "fixed a rare crash when the schedule had more than 20 entries",
        "lower standby power",
        "new quiet mode at night",
        "security fixes",
        "more accurate status reporting in the app",
        "support for Matter",
    ]
    sections = []
    for j, v in enumerate(p["firmware"]):
        month = 1 + (j * 4 + rng.randint(0, 3)) % 12
        picked = rng.sample(changes, 3)
        sections.append(
            (
                f"Firmware {v}",
                f"Released {p['release_year'] + j // 3}-{month:02d}. Changes in {v}: "
                + "; ".join(picked)
                + ". Updates install automatically overnight when the device is idle.",
            )
        )
    return f"{p['name']} release notes", sections


def _buying_guide(line: str, models: list[dict]) -> tuple[str, list[tuple[str, str]]]:
    info = LINES[line]
    rows = "\n".join(
        f"| {m['name']} | ${m['price']} | {m['runtime']} | {m['noise_db']} dB | "
        f"{m['weight_kg']} kg | {m['release_year']} |"
        for m in models
    )
    sections = [
        (
            "Comparison",
            (
                f"All {len(models)} {info['kind']} models side by side (capacity in "
                f"{info['runtime_unit']}).\n\n| model | price | capacity | noise | weight "
                "| year |\n"
                f"|---|---|---|---|---|---|\n{rows}"
            ),
        )
    ]
    for m in models:
        quiet = "one of the quietest in the range" if m["noise_db"] < 40 else "louder than average"
        light = (
            "light enough to carry between rooms"
            if m["weight_kg"] < 2
            else "best left in one place"
        )
        sections.append(
            (
                m["name"],
                f"The {m['name']} ({m['sku']}) costs ${m['price']} and is rated at "
                f"{m['runtime']} {info['runtime_unit']}. At {m['noise_db']} dB it is {quiet}; at "
                f"{m['weight_kg']} kg it is {light}. It shipped in {m['release_year']} in "
                f"{m['colour']} and works with the {m['app']}. Choose it if "
                + (
                    "price matters most."
                    if m["price"] < 200
                    else "you want the most capacity for a large home."
                    if m["runtime"] > sorted(x["runtime"] for x in models)[len(models) // 2]
                    else "you want a balanced model."
                ),
            )
        )
    return f"Kestrel {line} buying guide", sections


def _faq_line(line: str, models: list[dict]) -> tuple[str, list[tuple[str, str]]]:
    info = LINES[line]
    cheapest = min(models, key=lambda m: m["price"])
    top = max(models, key=lambda m: m["runtime"])
    qa = [
        (
            f"How often should I replace the {info['consumable']}?",
            f"Every {info['interval_months']} months for every {line} model.",
        ),
        (
            f"Which {line} model is the least expensive?",
            f"The {cheapest['name']} at ${cheapest['price']}.",
        ),
        (
            f"Which {line} model has the highest rated capacity?",
            f"The {top['name']}, rated at {top['runtime']} {info['runtime_unit']}.",
        ),
        (
            f"Does the {line} range work with 5 GHz Wi-Fi?",
            "No. Every model connects to 2.4 GHz networks only.",
        ),
        (
            f"What does a blinking red light mean on a {line}?",
            "The device needs attention: open the app to see the error code and the fix.",
        ),
        (
            f"How long is the warranty on {line} products?",
            f"{info['warranty_years']} years, and one more year on Pro models.",
        ),
    ]
    return f"Kestrel {line} FAQ", [(q, a) for q, a in qa]


def _policies() -> list[tuple[str, str, list[tuple[str, str]]]]:
    p = POLICY
    ship = "\n".join(f"| {r} | {d} | {c} |" for r, d, c in p["shipping"])
    care = "\n".join(f"| {t} | {c} |" for t, c in p["care_plus"])
    meals = "\n".join(f"| {w} | {c} |" for w, c in p["meal_caps"])
    sla = "\n".join(f"| {a} | {b} | {c} |" for a, b, c in p["it_sla"])
    return [
        (
            "policy-returns",
            "Returns and refunds policy",
            [
                (
                    "Return window",
                    (
                        f"You may return any product within {p['return_days']} days of delivery. "
                        "Items must include all accessories and the original packaging."
                    ),
                ),
                (
                    "Restocking fee",
                    (
                        f"Opened items that are not defective carry a {p['restocking_fee_pct']}% "
                        "restocking fee. Defective items and unopened items are refunded in full."
                    ),
                ),
                (
                    "Refund timing",
                    (
                        f"Refunds go to the original payment method within {p['refund_days']} "
                        "days of the return reaching our warehouse."
                    ),
                ),
                (
                    "Non-returnable items",
                    (
                        "Consumables that have been used (filters, cartridges, brushes) and gift "
                        "cards cannot be returned."
                    ),
                ),
            ],
        ),
        (
            "policy-shipping",
            "Shipping policy",
            [
                (
                    "Rates and delivery times",
                    "| region | delivery time | cost |\n|---|---|---|\n" + ship,
                ),
                (
                    "Free shipping",
                    (
                        "Domestic standard shipping is free on orders over "
                        f"${p['free_shipping_over']}."
                    ),
                ),
                (
                    "Tracking",
                    "A tracking link is emailed when the order leaves the warehouse.",
                ),
            ],
        ),
        (
            "policy-warranty",
            "Warranty and Kestrel Care+",
            [
                (
                    "Limited warranty",
                    (
                        "Every product has a limited warranty against defects in materials and "
                        "workmanship: 2 years for Sweep and Watch, 3 years for Breeze, 5 years for "
                        "Ember and 1 year for Clear, plus one year on Pro models. "
                        "Accidental damage "
                        "is not covered."
                    ),
                ),
                (
                    "Kestrel Care+",
                    "Kestrel Care+ extends the warranty and adds accidental damage cover.\n\n"
                    "| term | price |\n|---|---|\n" + care,
                ),
                (
                    "Claims",
                    (
                        f"Care+ covers up to {p['care_plus_claims_per_year']} accidental damage "
                        "claims per year. Claims are filed in the app with a photo of the damage."
                    ),
                ),
            ],
        ),
        (
            "policy-privacy",
            "Privacy and data retention",
            [
                (
                    "Camera footage",
                    (
                        f"Cloud recordings from Watch cameras are kept for "
                        f"{p['footage_retention_days']} days, then deleted automatically. "
                        "Footage on "
                        "the local SD card stays until it is overwritten or formatted."
                    ),
                ),
                (
                    "Account deletion",
                    (
                        f"When you delete your account, personal data is erased within "
                        f"{p['account_deletion_days']} days, except invoices we must keep by law."
                    ),
                ),
                (
                    "Data sharing",
                    (
                        "We never sell personal data. Service providers process data only on our "
                        "instructions."
                    ),
                ),
            ],
        ),
        (
            "handbook-leave",
            "Employee handbook: leave",
            [
                (
                    "Paid time off",
                    (
                        f"Full-time employees accrue {p['pto_days']} days of paid time off per "
                        f"calendar year. Up to {p['carry_over_days']} unused days carry over to "
                        "the next year."
                    ),
                ),
                (
                    "Sick leave",
                    (
                        f"Employees have {p['sick_days']} paid sick days per year; a doctor's note "
                        "is needed after three consecutive days."
                    ),
                ),
                (
                    "Parental leave",
                    (
                        "Every new parent, by birth or adoption, receives "
                        f"{p['parental_leave_weeks']}"
                        " weeks of fully paid parental leave, to be taken within the first year."
                    ),
                ),
            ],
        ),
        (
            "handbook-expenses",
            "Employee handbook: expenses and travel",
            [
                ("Meal limits", "| where | daily meal cap |\n|---|---|\n" + meals),
                (
                    "Receipts",
                    (
                        f"Attach a receipt for every expense over ${p['receipt_threshold']}. "
                        f"Submit expense reports within {p['expense_submit_days']} days of the "
                        "expense."
                    ),
                ),
                (
                    "Flights",
                    (
                        "Book economy class. Business class is allowed on flights longer than "
                        f"{p['business_class_hours']} hours."
                    ),
                ),
            ],
        ),
        (
            "handbook-remote",
            "Employee handbook: remote work",
            [
                (
                    "Remote days",
                    (
                        f"Employees may work remotely up to {p['remote_days_per_week']} days per "
                        "week with their manager's agreement."
                    ),
                ),
                (
                    "Home office",
                    (
                        f"A one-time home office stipend of ${p['home_office_stipend']} covers a "
                        "desk, chair or monitor."
                    ),
                ),
            ],
        ),
        (
            "handbook-security",
            "Employee handbook: information security",
            [
                (
                    "Passwords",
                    (
                        f"Passwords must be at least {p['password_length']} characters. They are "
                        f"changed {p['password_rotation']}. Multi-factor authentication "
                        "is required "
                        "on every company account."
                    ),
                ),
                (
                    "Devices",
                    (
                        "Laptops use full-disk encryption and lock after "
                        f"{p['lock_minutes']} minutes of inactivity. Report a lost device to IT "
                        "within one hour."
                    ),
                ),
                (
                    "IT support levels",
                    "| priority | first response | resolution target |\n|---|---|---|\n" + sla,
                ),
            ],
        ),
        (
            "handbook-conduct",
            "Employee handbook: code of conduct",
            [
                (
                    "Gifts",
                    (
                        f"Employees may accept gifts worth up to ${p['gift_limit']} from "
                        "suppliers; "
                        "anything more valuable is declined or reported to Compliance."
                    ),
                ),
                (
                    "Conflicts of interest",
                    (
                        "Disclose any personal interest in a supplier or customer to your manager "
                        "before taking part in a decision about them."
                    ),
                ),
            ],
        ),
    ]


def _support_article(p: dict, code: str, meaning: str, fix: str) -> tuple[str, str]:
    """Plain text that restates a manual fact in other words (semantic questions hit it)."""
    info = LINES[p["line"]]
    text = (
        f"Support note: {p['name']} showing {code}\n\n"
        f"Symptom. Your {info['kind']} stops and the light flashes red; the app reports "
        f"that {meaning}.\n\n"
        f"Resolution. {fix.capitalize()}. If the code returns within a week, write to "
        f"{SUPPORT_EMAIL} quoting SKU {p['sku']}.\n\n"
        f"Applies to firmware {p['firmware'][-1]} and later.\n"
    )
    return f"support-{slug(p['name'])}-{code.lower()}", text


def _md_passages(doc: Document) -> list[Passage]:
    """One passage per `##` section (the `#` title line joins the first)."""
    out: list[Passage] = []
    heads = [m.start() for m in re.finditer(r"^## ", doc.text, flags=re.MULTILINE)]
    bounds = [*heads, len(doc.text)]
    for i, (s, e) in enumerate(itertools.pairwise(bounds)):
        start = 0 if i == 0 else s
        title = doc.text[s + 3 : doc.text.index("\n", s)].strip()
        out.append(
            Passage(f"{doc.doc_id}#{slug(title)}", doc.doc_id, title, start, e, doc.text[start:e])
        )
    return out


def _txt_passages(doc: Document) -> list[Passage]:
    return [Passage(f"{doc.doc_id}#all", doc.doc_id, doc.title, 0, len(doc.text), doc.text)]


def generate(seed: int = 4) -> KnowledgeBase:
    """The knowledge base for a seed: documents, passages and labelled questions."""
    rng = random.Random(seed)
    products = _models(rng)
    docs: list[Document] = []
    questions: list[Question] = []

    def md(doc_id: str, title: str, kind: str, sections: list[tuple[str, str]], **kw) -> None:
        docs.append(Document(doc_id, title, kind, "md", _sections_md(title, sections), **kw))

    for p in products:
        pid = slug(p["name"])
        title, sections = _manual(p)
        md(f"manual-{pid}", title, "manual", sections, product=p["name"], line=p["line"])
        title, sections = _release_notes(p, rng)
        md(f"notes-{pid}", title, "release_notes", sections, product=p["name"], line=p["line"])
    for line in LINES:
        title, sections = _buying_guide(line, [p for p in products if p["line"] == line])
        md(f"guide-{slug(line)}", title, "guide", sections, line=line)
        title, sections = _faq_line(line, [p for p in products if p["line"] == line])
        md(f"faq-{slug(line)}", title, "faq", sections, line=line)
    for doc_id, title, sections in _policies():
        md(doc_id, title, "policy", sections)
    support_for: dict[tuple[str, str], str] = {}
    for p in products:
        for code, meaning, fix in LINES[p["line"]]["errors"]:
            if rng.random() < 0.9:
                doc_id, text = _support_article(p, code, meaning, fix)
                docs.append(
                    Document(
                        doc_id,
                        text.splitlines()[0],
                        "support",
                        "txt",
                        text,
                        product=p["name"],
                        line=p["line"],
                    )
                )
                support_for[(p["name"], code)] = f"{doc_id}#all"

    passages = [
        q for d in docs for q in (_md_passages(d) if d.format == "md" else _txt_passages(d))
    ]
    pid_of = {p.passage_id for p in passages}

    def ask(q: str, a: str, pids: list[str], kind: str) -> None:
        missing = [x for x in pids if x not in pid_of]
        if missing:
            msg = f"question {q!r} labels unknown passages {missing}"
            raise ValueError(msg)
        questions.append(
            Question(f"q{len(questions):03d}", q, a, pids, kind, pids[0].split("#")[0])
        )

    # Product facts: exact names and codes (lexical), with the support note when one exists.
    for p in rng.sample(products, 24):
        m = f"manual-{slug(p['name'])}"
        g = f"guide-{slug(p['line'])}#{slug(p['name'])}"
        info = LINES[p["line"]]
        ask(
            f"What is the rated capacity of the {p['name']}?",
            f"{p['runtime']} {info['runtime_unit']}",
            [f"{m}#specifications", g],
            "lexical",
        )
        code, meaning, _ = rng.choice(info["errors"])
        pids = [f"{m}#troubleshooting"]
        if (p["name"], code) in support_for:
            pids.append(support_for[(p["name"], code)])
        ask(f"What does error {code} mean on the {p['name']}?", meaning, pids, "lexical")
    for p in rng.sample(products, 16):
        m = f"manual-{slug(p['name'])}"
        ask(
            f"How much does the {p['name']} cost?",
            f"${p['price']}",
            [f"{m}#specifications", f"guide-{slug(p['line'])}#{slug(p['name'])}"],
            "lexical",
        )
        ask(
            f"How long is the warranty on the {p['name']}?",
            f"{p['warranty_years']}-year",
            [f"{m}#warranty"],
            "both",
        )
    for p in rng.sample(products, 8):
        v = p["firmware"][-1]
        ask(
            f"When was firmware {v} for the {p['name']} released?",
            v,
            [f"notes-{slug(p['name'])}#firmware-{slug(v)}"],
            "lexical",
        )
    for line, info in LINES.items():
        ask(
            f"How often do I need a new {info['consumable']} for my {line}?",
            f"every {info['interval_months']} months",
            [f"faq-{slug(line)}#how-often-should-i-replace-the-{slug(info['consumable'])}"],
            "both",
        )
    # Policy facts, asked in other words than the documents use (semantic).
    pol = POLICY
    for q, a, pid in [
        (
            "How much time off do I get when I have a baby?",
            f"{pol['parental_leave_weeks']} weeks",
            "handbook-leave#parental-leave",
        ),
        (
            "How many vacation days do full-time staff earn each year?",
            f"{pol['pto_days']} days",
            "handbook-leave#paid-time-off",
        ),
        (
            "Can I keep unused holiday for next year?",
            f"{pol['carry_over_days']} unused days",
            "handbook-leave#paid-time-off",
        ),
        (
            "When do I need a note from the doctor for being ill?",
            "after three consecutive days",
            "handbook-leave#sick-leave",
        ),
        (
            "What is the most I can spend on dinner when travelling abroad?",
            "$90",
            "handbook-expenses#meal-limits",
        ),
        (
            "Below what amount can I skip attaching a receipt?",
            f"${pol['receipt_threshold']}",
            "handbook-expenses#receipts",
        ),
        (
            "How long do I have to file my expense claim?",
            f"{pol['expense_submit_days']} days",
            "handbook-expenses#receipts",
        ),
        (
            "When am I allowed to fly business?",
            f"flights longer than {pol['business_class_hours']} hours",
            "handbook-expenses#flights",
        ),
        (
            "How many days a week can I work from home?",
            f"{pol['remote_days_per_week']} days",
            "handbook-remote#remote-days",
        ),
        (
            "Is there money to buy a chair for my home desk?",
            f"${pol['home_office_stipend']}",
            "handbook-remote#home-office",
        ),
        (
            "How long must my login secret be?",
            f"{pol['password_length']} characters",
            "handbook-security#passwords",
        ),
        (
            "Do I have to change my password every few months?",
            pol["password_rotation"],
            "handbook-security#passwords",
        ),
        (
            "After how long idle does my laptop lock itself?",
            f"{pol['lock_minutes']} minutes",
            "handbook-security#devices",
        ),
        (
            "How fast will IT respond when everything is down?",
            "1 hour",
            "handbook-security#it-support-levels",
        ),
        (
            "Can I accept a bottle of wine from a vendor?",
            f"up to ${pol['gift_limit']}",
            "handbook-conduct#gifts",
        ),
        (
            "My cousin owns one of our suppliers, what should I do?",
            "to your manager",
            "handbook-conduct#conflicts-of-interest",
        ),
        (
            "How long do I have to send back something I bought?",
            f"{pol['return_days']} days",
            "policy-returns#return-window",
        ),
        (
            "Will I be charged if I open the box and then return it?",
            f"{pol['restocking_fee_pct']}%",
            "policy-returns#restocking-fee",
        ),
        (
            "When will my money come back after a return?",
            f"{pol['refund_days']} days",
            "policy-returns#refund-timing",
        ),
        (
            "Can I return a used filter?",
            "cannot be returned",
            "policy-returns#non-returnable-items",
        ),
        ("How much is delivery to Germany?", "$24.00", "policy-shipping#rates-and-delivery-times"),
        (
            "How quickly does express delivery arrive?",
            "1-2 business days",
            "policy-shipping#rates-and-delivery-times",
        ),
        (
            "When is standard delivery free?",
            f"orders over ${pol['free_shipping_over']}",
            "policy-shipping#free-shipping",
        ),
        ("How do I follow my parcel?", "a tracking link is emailed", "policy-shipping#tracking"),
        (
            "Is dropping my device covered by the normal warranty?",
            "not covered",
            "policy-warranty#limited-warranty",
        ),
        (
            "What does three years of extended protection cost?",
            "$69",
            "policy-warranty#kestrel-care",
        ),
        (
            "How many damage claims can I make in a year?",
            f"{pol['care_plus_claims_per_year']}",
            "policy-warranty#claims",
        ),
        (
            "How long are my camera videos stored online?",
            f"{pol['footage_retention_days']} days",
            "policy-privacy#camera-footage",
        ),
        (
            "If I close my account how soon is my data gone?",
            f"{pol['account_deletion_days']} days",
            "policy-privacy#account-deletion",
        ),
        ("Do you sell my information to advertisers?", "never", "policy-privacy#data-sharing"),
    ]:
        ask(q, a, [pid], "semantic")
    return KnowledgeBase(docs, passages, questions, products)


def summary(kb: KnowledgeBase) -> dict:
    """Counts and size (a page is taken as 3,000 characters)."""
    chars = sum(len(d.text) for d in kb.documents)
    return {
        "documents": len(kb.documents),
        "passages": len(kb.passages),
        "questions": len(kb.questions),
        "characters": chars,
        "pages": round(chars / 3000),
        "by_kind": {
            k: sum(d.kind == k for d in kb.documents)
            for k in ("manual", "release_notes", "guide", "faq", "policy", "support")
        },
    }


def write(kb: KnowledgeBase, root: str | Path) -> Path:
    """Documents as files (`docs/<doc_id>.md|txt`) plus passages.jsonl, questions.json."""
    root = Path(root)
    (root / "docs").mkdir(parents=True, exist_ok=True)
    for d in kb.documents:
        (root / "docs" / f"{d.doc_id}.{d.format}").write_text(d.text, encoding="utf-8")
    with (root / "passages.jsonl").open("w", encoding="utf-8") as f:
        for p in kb.passages:
            f.write(json.dumps(asdict(p), ensure_ascii=False) + "\n")
    docs_meta = [{k: v for k, v in asdict(d).items() if k != "text"} for d in kb.documents]
    (root / "documents.json").write_text(json.dumps(docs_meta, indent=1), encoding="utf-8")
    (root / "questions.json").write_text(
        json.dumps([asdict(q) for q in kb.questions], indent=1, ensure_ascii=False),
        encoding="utf-8",
    )
    return root


if __name__ == "__main__":
    import sys

    kb = generate()
    print(json.dumps(summary(kb), indent=1))
    if len(sys.argv) > 1:
        print(write(kb, sys.argv[1]))
