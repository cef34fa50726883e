"""Word vocabularies with frequencies: the words W2 (attention-head pairs) and W3 (feed-forward
concepts) read off a model, most frequent first.

Two sources: :func:`frequent_words`, built offline from the ``wordfreq`` package, and
:func:`load_word_frequencies`, which reads a ``word<TAB>frequency`` file such as the study's
``SingleShareGPT_Vocab.tsv``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from tunescope.data.files import display_path, read_text, shown, text_lines
from tunescope.errors import DataError, TunescopeError

HEADER_FREQUENCY_NAMES = frozenset({"frequency", "freq", "count", "counts", "probability", "prob",
                                    "p", "weight", "n"})
"""Second-column names that mark the first line of a frequency file as a header."""


@dataclass(frozen=True)
class Vocabulary:
    """Words with their frequencies, most frequent first; ``source`` says where they came from."""

    words: tuple[str, ...]
    frequencies: tuple[float, ...]
    source: str

    def __post_init__(self):
        if len(self.words) != len(self.frequencies):
            raise ValueError(f"{len(self.words)} words but {len(self.frequencies)} frequencies")

    def __len__(self) -> int:
        return len(self.words)

    def __iter__(self):
        return iter(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self.words

    def top(self, n: int) -> Vocabulary:
        """The ``n`` most frequent words (all of them when there are fewer)."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        return Vocabulary(self.words[:n], self.frequencies[:n], self.source)


def _wordfreq():
    try:
        import wordfreq
    except ImportError as exc:
        raise TunescopeError("the 'wordfreq' package is missing; install it with "
                             "'pip install wordfreq' (a tunescope dependency)") from exc
    return wordfreq


def frequent_words(n: int = 26000, language: str = "en") -> Vocabulary:
    """The ``n`` most frequent words of ``language`` according to ``wordfreq`` (offline), most
    frequent first, with their frequencies (share of all word tokens).

    Kept: lower-case, purely alphabetic words (``str.isalpha``: no digits, punctuation,
    apostrophes or hyphens), each once. Raises :class:`TunescopeError` when ``wordfreq`` is not
    installed or knows too few words of ``language``.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    wf = _wordfreq()
    try:
        available = wf.available_languages()
    except Exception:  # noqa: BLE001 - older wordfreq versions; let top_n_list decide
        available = None
    if available is not None and language not in available:
        raise TunescopeError(f"wordfreq has no word list for language {language!r}")
    limit = max(2 * n, 1000)
    while True:
        candidates = wf.top_n_list(language, limit)
        words: list[str] = []
        seen: set[str] = set()
        for w in candidates:
            if w.isalpha() and w == w.lower() and w not in seen:
                seen.add(w)
                words.append(w)
                if len(words) == n:
                    break
        if len(words) == n or len(candidates) < limit:
            break
        limit *= 2
    if len(words) < n:
        raise TunescopeError(f"wordfreq knows only {len(words)} alphabetic {language!r} words; "
                             f"{n} were asked for")
    freqs = tuple(float(wf.word_frequency(w, language)) for w in words)
    return Vocabulary(tuple(words), freqs, f"wordfreq:{language}")


def load_word_frequencies(path: str | Path) -> Vocabulary:
    """Read a ``word<TAB>frequency`` file (UTF-8), most frequent first.

    The first line may be a header: it is skipped when its second column is a column name
    (``frequency``, ``freq``, ``count``, ...). Blank lines are skipped. Rows are sorted by
    frequency, highest first, keeping the file's order among equal frequencies. Raises
    :class:`DataError` naming file, line and field for a row without a tab, an empty word, a
    frequency that is not a finite number >= 0, a repeated word, and for a file with no rows.
    """
    path, numbered = _read(path)
    rows = [(word, freq) for _, word, freq in numbered]
    rows.sort(key=lambda r: -r[1])  # stable: ties keep the file's order
    return Vocabulary(tuple(w for w, _ in rows), tuple(f for _, f in rows), str(path))


def numbered_words(path: str | Path) -> list[tuple[int, str]]:
    """``(line, word)`` for each word :func:`load_word_frequencies` reads from a file, in file
    order (1-based lines)."""
    return [(lineno, word) for lineno, word, _ in _read(path)[1]]


def _read(path: str | Path) -> tuple[Path, list[tuple[int, str, float]]]:
    """(path, (line, word, frequency) of each row in file order) of a word-frequency file."""
    path, text = read_text(path, "a word-frequency file")
    where = display_path(path)
    rows: list[tuple[int, str, float]] = []
    first_line: dict[str, int] = {}
    first = True
    for lineno, line in text_lines(text):
        if not line.strip():
            continue
        is_first, first = first, False
        if "\t" not in line:
            raise DataError("expected 'word<TAB>frequency', found no tab", path=where,
                            line=lineno, field="frequency")
        word, _, freq_text = line.partition("\t")
        freq_text = freq_text.strip()
        if is_first and freq_text.lower() in HEADER_FREQUENCY_NAMES:
            continue
        if not word.strip():
            raise DataError("empty word", path=where, line=lineno, field="word")
        if "\t" in freq_text:
            raise DataError(f"expected two columns, found {line.count(chr(9)) + 1}",
                            path=where, line=lineno, field="frequency")
        try:
            freq = float(freq_text)
        except ValueError:
            raise DataError(f"not a number: {shown(freq_text)}", path=where, line=lineno,
                            field="frequency") from None
        if not math.isfinite(freq) or freq < 0:
            raise DataError(f"must be a finite number >= 0, got {shown(freq_text)}", path=where,
                            line=lineno, field="frequency")
        if word in first_line:
            raise DataError(f"word {shown(word)} repeats line {first_line[word]}", path=where,
                            line=lineno, field="word")
        first_line[word] = lineno
        rows.append((lineno, word, freq))
    if not rows:
        raise DataError("no word-frequency rows", path=where)
    return path, rows
