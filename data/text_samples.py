"""Short texts the Course 4 week 1 lessons measure a language model's tokenizer and quality on.

- :data:`PARALLEL`: the same two sentences in thirteen languages (translated for this
  project), so that token counts compare languages on equal content;
- :data:`CODE`: the same small function in Python, JSON and SQL form;
- :data:`HELD_OUT`: English prose written for this project and published nowhere else, so a
  model cannot have seen it in training: the held-out text perplexity is measured on;
- :func:`synthetic_corpus`: seeded documents of pseudo-words, a corpus with many distinct
  words for timing a tokenizer trainer.

Like ``data/knowledge_base.py``, this file has no project imports, so a notebook in a
Databricks Git folder can import it from ``data/``.
"""

from __future__ import annotations

import random

# Language (ISO 639-1) -> the two sentences, in that language.
PARALLEL: dict[str, str] = {
    "en": "The library opens at nine in the morning and closes at six in the evening. "
    "Please return borrowed books within three weeks.",
    "fr": "La bibliothèque ouvre à neuf heures du matin et ferme à six heures du soir. "
    "Veuillez rendre les livres empruntés dans un délai de trois semaines.",
    "de": "Die Bibliothek öffnet um neun Uhr morgens und schließt um sechs Uhr abends. "
    "Bitte geben Sie ausgeliehene Bücher innerhalb von drei Wochen zurück.",
    "es": "La biblioteca abre a las nueve de la mañana y cierra a las seis de la tarde. "
    "Por favor, devuelva los libros prestados en un plazo de tres semanas.",
    "it": "La biblioteca apre alle nove del mattino e chiude alle sei di sera. "
    "Si prega di restituire i libri presi in prestito entro tre settimane.",
    "pt": "A biblioteca abre às nove da manhã e fecha às seis da tarde. "
    "Por favor, devolva os livros emprestados dentro de três semanas.",
    "ru": "Библиотека открывается в девять утра и закрывается в шесть вечера. "
    "Пожалуйста, возвращайте взятые книги в течение трёх недель.",
    "el": "Η βιβλιοθήκη ανοίγει στις εννέα το πρωί και κλείνει στις έξι το απόγευμα. "  # noqa: RUF001 (Greek text)
    "Παρακαλούμε επιστρέψτε τα δανεισμένα βιβλία μέσα σε τρεις εβδομάδες.",
    "ar": "تفتح المكتبة في التاسعة صباحًا وتغلق في السادسة مساءً. "
    "يرجى إعادة الكتب المستعارة خلال ثلاثة أسابيع.",
    "hi": "पुस्तकालय सुबह नौ बजे खुलता है और शाम छह बजे बंद होता है। "
    "कृपया उधार ली गई किताबें तीन सप्ताह के भीतर लौटा दें।",
    "zh": "图书馆早上九点开门，晚上六点关门。请在三周内归还借阅的图书。",  # noqa: RUF001 (Chinese punctuation)
    "ja": "図書館は朝九時に開館し、夕方六時に閉館します。借りた本は三週間以内に返却してください。",
    "ko": "도서관은 아침 아홉 시에 문을 열고 저녁 여섯 시에 문을 닫습니다. "
    "빌린 책은 삼 주 이내에 반납해 주세요.",
}

# Form -> the same small piece of logic (a late fee for a returned book).
CODE: dict[str, str] = {
    "python": '''def late_fee(days_late: int, rate: float = 0.25) -> float:
    """The fee for a book returned `days_late` days after its due date."""
    if days_late <= 0:
        return 0.0
    return round(min(days_late * rate, 10.0), 2)
''',
    "json": """{
    "rule": "late_fee",
    "rate_per_day": 0.25,
    "cap": 10.0,
    "applies_when": {"days_late": {"greater_than": 0}}
}
""",
    "sql": """SELECT loan_id,
       CASE WHEN days_late <= 0 THEN 0.0
            ELSE ROUND(LEAST(days_late * 0.25, 10.0), 2)
       END AS late_fee
FROM loans;
""",
}

# Held-out English prose: paragraphs on everyday subjects, plain style.
HELD_OUT: list[str] = [
    (
        "The ferry left the harbour a few minutes after seven. Most of the passengers stayed "
        "inside, where the windows were fogged and the coffee machine hummed, but a small group "
        "stood at the rail and watched the town shrink behind them. A child pointed at a seal "
        "on the breakwater, and for a moment everyone looked in the same direction."
    ),
    (
        "Bread needs time more than it needs skill. Mix flour, water, salt and a little yeast, "
        "leave the dough covered overnight, and in the morning it will have risen and filled the "
        "bowl. Fold it a few times, shape it gently, let it rest again, and bake it in the "
        "hottest oven you have until the crust is dark and sounds hollow when tapped."
    ),
    (
        "When the river flooded in the spring, the lower fields stayed under water for almost "
        "three weeks. The farmers moved their animals to the hill pasture and waited. After the "
        "water went down, the soil was covered with a thin layer of silt, and that summer the "
        "harvest was the best anyone in the valley could remember."
    ),
    (
        "A good map leaves things out. It shows the roads you can drive on, the rivers you must "
        "cross and the towns where you can stop, and it ignores almost everything else. The "
        "skill of the mapmaker is deciding what a traveller does not need to know, so that what "
        "remains can be read at a glance."
    ),
    (
        "My grandmother kept a notebook of every letter she sent. Next to each date she wrote "
        "the name of the person and one line about what she had told them. Reading it years "
        "later, we could follow her life through those short notes: a new job, a move to the "
        "coast, the birth of her first son, a long winter when the roads were closed."
    ),
    (
        "The old observatory on the ridge is open to visitors on clear evenings. A volunteer "
        "explains how the telescope turns with the sky, then lets each visitor look through the "
        "eyepiece for a minute. On most nights the favourite sight is the moon, whose craters "
        "look close enough to touch, though some people prefer the faint smudge of a galaxy."
    ),
    (
        "Learning to swim as an adult is mostly about trust. The water will hold you up if you "
        "let it, but the body does not believe this at first and fights it. Lessons begin with "
        "floating, breathing out slowly under the surface and standing up calmly, long before "
        "anyone talks about strokes or speed."
    ),
    (
        "The repair shop on the corner fixes almost anything with a motor or a plug. Its owner "
        "keeps boxes of spare parts sorted by size on shelves that reach the ceiling, and he "
        "likes to explain what went wrong while he works. Customers often leave knowing more "
        "about their kettle or their lawnmower than they ever expected to."
    ),
]


def synthetic_corpus(
    n_docs: int = 100, words_per_doc: int = 400, lexicon: int = 12_000, seed: int = 7
) -> list[str]:
    """Documents of pseudo-words with Zipf frequencies: a corpus with many distinct words.

    A tokenizer trainer's cost grows with the number of distinct words; the knowledge base
    has under a thousand, this has thousands at the defaults (about 450 kB of text), which
    makes a trainer that recounts every pair after every merge visibly slower than one that
    updates the counts.
    """
    if min(n_docs, words_per_doc, lexicon) < 1:
        msg = (
            "n_docs, words_per_doc and lexicon must be >= 1, "
            f"got {n_docs}, {words_per_doc}, {lexicon}"
        )
        raise ValueError(msg)
    rng = random.Random(seed)
    onsets = ["", "b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v"]
    onsets += ["br", "st", "tr", "ch", "sh", "pl", "gr"]
    vowels = ["a", "e", "i", "o", "u", "ai", "ou", "ee", "y"]
    codas = ["", "", "n", "r", "s", "t", "l", "m", "nd", "st", "ck"]
    words: set[str] = set()
    while len(words) < lexicon:
        syllables = rng.randint(1, 4)
        words.add(
            "".join(
                rng.choice(onsets) + rng.choice(vowels) + rng.choice(codas)
                for _ in range(syllables)
            )
        )
    ranked = sorted(words)
    rng.shuffle(ranked)
    weights = [1 / (rank + 1) for rank in range(len(ranked))]
    return [
        " ".join(rng.choices(ranked, weights, k=words_per_doc)).capitalize() + "."
        for _ in range(n_docs)
    ]
