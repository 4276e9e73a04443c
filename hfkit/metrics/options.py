"""How a metric's `eval.metric_args` become configured scorers: sacrebleu objects, ROUGE scorers,
exact-match normalisation (used by the specs in hfkit/metrics/builtin/)."""

from __future__ import annotations

import inspect
import re
import string

import sacrebleu

# rouge_score is imported where used: it imports nltk, over a second, which BLEU users need not pay.

# --- sacrebleu -----------------------------------------------------------------------------------


def bleu(smooth_method="exp", smooth_value=None, force=False, lowercase=False, tokenize=None,
         use_effective_order=False) -> sacrebleu.BLEU:
    """The `sacrebleu` module's options (the Hub module's names) as a sacrebleu BLEU object."""
    return sacrebleu.BLEU(lowercase=lowercase, force=force, tokenize=tokenize, smooth_method=smooth_method,
                          smooth_value=smooth_value, effective_order=use_effective_order)


def chrf(char_order=sacrebleu.CHRF.CHAR_ORDER, word_order=sacrebleu.CHRF.WORD_ORDER, beta=sacrebleu.CHRF.BETA,
         lowercase=False, whitespace=False, eps_smoothing=False) -> sacrebleu.CHRF:
    """The `chrf` module's options as a sacrebleu CHRF object (word_order=2 is chrF++)."""
    return sacrebleu.CHRF(char_order=char_order, word_order=word_order, beta=beta, lowercase=lowercase,
                          whitespace=whitespace, eps_smoothing=eps_smoothing)


def ter(normalized=False, ignore_punct=False, support_zh_ja_chars=False, case_sensitive=False) -> sacrebleu.TER:
    """The `ter` module's options (the Hub module's names) as a sacrebleu TER object."""
    return sacrebleu.TER(normalized=normalized, no_punct=ignore_punct, asian_support=support_zh_ja_chars,
                         case_sensitive=case_sensitive)


def defaults(builder) -> dict:
    """A builder's options and their defaults: a metric's options schema."""
    return {name: p.default for name, p in inspect.signature(builder).parameters.items()}

# --- exact match ---------------------------------------------------------------------------------


def exact_match_normalize(texts: list[str], regexes_to_ignore=None, ignore_case=False, ignore_punctuation=False,
                          ignore_numbers=False) -> list[str]:
    """The Hub `exact_match` rules, in its order: drop the regexes, lower-case, drop punctuation/digits."""
    texts = list(texts)
    for pattern in regexes_to_ignore or []:
        texts = [re.sub(pattern, "", t) for t in texts]
    if ignore_case:
        texts = [t.lower() for t in texts]
    removed = (string.punctuation if ignore_punctuation else "") + (string.digits if ignore_numbers else "")
    table = str.maketrans("", "", removed)
    return [t.translate(table) for t in texts]


# --- ROUGE ---------------------------------------------------------------------------------------


class WhitespaceTokenizer:
    """Lower-cased whitespace-separated tokens, punctuation kept: for scripts rouge_score's default
    tokenizer would erase (it keeps only [a-z0-9]) but that put spaces between words (Arabic, Hindi...)."""

    def tokenize(self, text):
        return text.lower().split()


class CharTokenizer:
    """Every non-space character, lower-cased, is a token: the usual ROUGE for Chinese, Japanese, Thai."""

    def tokenize(self, text):
        return [ch for ch in text.lower() if not ch.isspace()]


ROUGE_TOKENIZERS = ("default", "whitespace", "char")

# A sentence ends at . ! ? (possibly repeated, possibly followed by closing quotes or brackets) when
# whitespace or the end of the text follows; at the CJK 。！？ whatever follows, since those
# scripts put no space between sentences and never use the full-width marks inside one.
_SENTENCE_END = re.compile(r"([.!?]+[\"'”’»)\]]*)(?:\s+|$)|([。！？]+[」』”’）)]*)\s*")


def one_sentence_per_line(text: str) -> str:
    """One sentence per line, for rougeLsum (what transformers' summarization example does with
    `"\\n".join(nltk.sent_tokenize(x))`, without nltk's downloaded punkt data).

    Text that already contains a newline is returned as is: its line breaks are taken to be the
    sentence boundaries. The regex knows no abbreviations, so "Dr. Smith" is two sentences where
    punkt would see one; decimals ("3.14") and "e.g.," stay whole since no space follows the dot.
    """
    if "\n" in text:
        return text
    lines = _SENTENCE_END.sub(lambda m: (m.group(1) or m.group(2)) + "\n", text.strip())
    return lines.rstrip("\n")


def rouge_tokenizer(tokenizer="default", use_stemmer=True):
    """A rouge_score tokenizer object from the `tokenizer` option (a name, or any object with
    `.tokenize(text)`); Porter stemming applies only to the default tokenizer (English only)."""
    if hasattr(tokenizer, "tokenize"):
        return tokenizer
    if tokenizer == "default":
        from rouge_score.tokenizers import DefaultTokenizer

        return DefaultTokenizer(use_stemmer)
    if tokenizer == "whitespace":
        return WhitespaceTokenizer()
    if tokenizer == "char":
        return CharTokenizer()
    raise ValueError(f"rouge: unknown tokenizer {tokenizer!r}; use one of {', '.join(ROUGE_TOKENIZERS)}")


def rouge_f_measures(predictions, references, rouge_types=None, use_stemmer=True, tokenizer="default",
                     split_sentences=True, use_aggregator=True) -> dict[str, list[float]]:
    """Each ROUGE type's F-measure per example (`use_aggregator` is the module's and is ignored here).

    A reference may be a list of strings: the best-scoring one counts, per ROUGE type, as
    rouge_score's `score_multi`. `split_sentences` puts each sentence on its own line first, which
    changes rougeLsum only (the other types treat a newline as any whitespace).
    """
    from rouge_score import rouge_scorer

    rouge_types = list(rouge_types or ["rouge1", "rouge2", "rougeL", "rougeLsum"])
    scorer = rouge_scorer.RougeScorer(rouge_types=rouge_types, tokenizer=rouge_tokenizer(tokenizer, use_stemmer))
    split = split_sentences and "rougeLsum" in rouge_types
    per_example = {key: [] for key in rouge_types}
    for reference, prediction in zip(references, predictions):
        if split:
            prediction = one_sentence_per_line(prediction)
            reference = ([one_sentence_per_line(r) for r in reference] if isinstance(reference, list)
                         else one_sentence_per_line(reference))
        scores = scorer.score_multi(reference, prediction) if isinstance(reference, list) else \
            scorer.score(reference, prediction)
        for key in rouge_types:
            per_example[key].append(scores[key].fmeasure)
    return per_example
