"""Sentences the MiniLM encoder tests share: everyday text, the empty string, accents, CJK,
emoji, odd whitespace, inline special tokens, one past the 256-token limit and one of 90 tokens.
"""

CORPUS = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "",
    "Café crème brûlée à la Zoë — naïve résumé",
    "北京是中国的首都。我爱自然语言处理\uff01",
    "Emoji: 😀🎉👍🏽 and 🇫🇷 flags ❤️",
    "Tabs\tand\nnewlines and\u00a0odd\u200bspaces",
    "special tokens inline: [CLS] a [SEP] b",
    "The Sovereign AI Stack computes sentence embeddings with SIMD kernels written in Rust.",
    "word " * 400,  # truncated to 256 tokens
    " ".join(f"token{i}" for i in range(90)),
    "?",
]
