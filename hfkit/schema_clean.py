"""The recipe's `data.clean` section: cleaning and quality filters of the training split.

A leaf beside hfkit.schema (which re-exports `CleanSection`): it imports nothing of hfkit.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator, model_validator


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RepetitionRules(Section):
    """Gopher's repetition limits (Rae et al. 2021, table A1), per text field: a row goes when one
    of its texts has more than this fraction repeated. null switches a limit off."""

    dup_line_frac: float | None = Field(0.30, ge=0, le=1, description="Most repeated lines, as a fraction of the lines.")
    dup_para_frac: float | None = Field(0.30, ge=0, le=1, description="Most repeated paragraphs (blank-line separated).")
    dup_line_char_frac: float | None = Field(0.20, ge=0, le=1, description="Most characters in repeated lines.")
    dup_para_char_frac: float | None = Field(0.20, ge=0, le=1, description="Most characters in repeated paragraphs.")
    top_ngram_char_frac: dict[PositiveInt, float] = Field(default_factory=lambda: {2: 0.20, 3: 0.18, 4: 0.16},
                                                          description="n -> most characters in the top repeated n-gram.")
    dup_ngram_char_frac: dict[PositiveInt, float] = Field(default_factory=lambda: {
        5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}, description="n -> most characters in repeated n-grams.")


class SymbolRules(Section):
    """Gopher's symbol limits (Rae et al. 2021, section A.1.1), on the whole example."""

    max_symbol_word_ratio: float | None = Field(0.1, ge=0, description="Most '#', and most '...' or '…', per word.")
    max_bullet_lines_ratio: float | None = Field(0.9, ge=0, le=1, description="Most lines starting with '•' or '-'.")
    max_ellipsis_lines_ratio: float | None = Field(0.3, ge=0, le=1, description="Most lines ending in '...' or '…'.")
    min_alpha_words_ratio: float | None = Field(0.8, ge=0, le=1, description="Fewest words holding a letter.")


def _recipe_forms(schema: dict) -> None:
    """What a recipe may write besides the validated forms: `true` for the published limits, one
    language code for a list of one (the validators turn both into the stored form)."""
    properties = schema["properties"]
    for key in ("repetition", "symbols"):
        properties[key]["anyOf"].insert(1, {"type": "boolean"})
    properties["language"]["anyOf"].insert(1, {"type": "string"})


class CleanSection(Section):
    """Cleaning of the TRAINING split, run in this order; each step can be switched off.

    Evaluation splits are never cleaned: they are scored exactly as the files hold them."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_recipe_forms)

    normalize_unicode: bool = Field(True, description="Unicode NFKC normalisation of the training text.")
    normalize_whitespace: bool = Field(True, description=(
        "Unify line endings, drop trailing spaces and blank lines at both ends; indentation stays."))
    drop_empty: bool = Field(True, description="Drop training examples whose text fields are empty.")
    min_chars: int | None = Field(None, ge=0, description="Drop training examples shorter than this many characters.")
    max_chars: PositiveInt | None = Field(None, description="Drop training examples longer than this many characters.")
    # Quality filters (hfkit.quality), off unless set; they run after max_chars, before dedup.
    min_words: PositiveInt | None = Field(None, description=(
        "Drop training examples with fewer words (not only punctuation or symbols); Gopher: 50."))
    max_words: PositiveInt | None = Field(None, description="Drop training examples with more words (Gopher: 100,000).")
    mean_word_length: tuple[float, float] | None = Field(None, description=(
        "[shortest, longest] mean word length of a training example (Gopher: [3, 10])."))
    repetition: RepetitionRules | None = Field(None, description=(
        "Drop training examples full of repeated lines, paragraphs or n-grams: true (Gopher's limits) or a mapping."))
    symbols: SymbolRules | None = Field(None, description=(
        "Drop training examples of symbols, bullets or ellipses rather than words: true (Gopher's limits) or a mapping."))
    language: list[str] | None = Field(None, description=(
        "Keep training examples in these languages (ISO 639-1: en or [en, fr]), by py3langid on the whole example."))
    language_threshold: float = Field(0.65, ge=0, le=1, description=(
        "The least probability the listed languages together must have for an example to stay (FineWeb: 0.65)."))
    dedup: bool = Field(True, description="Drop exact duplicates of the normalised example (the first one stays).")
    near_dedup: bool = Field(False, description=(
        "Drop MinHash near-duplicates; off by default, since it can drop real data."))
    near_dedup_threshold: float = Field(0.85, gt=0, le=1, description=(
        "Estimated Jaccard similarity (MinHash of character 5-grams) at or above which near_dedup calls two examples duplicates."))
    decontaminate: bool = Field(True, description="Drop training examples that also appear in an evaluation split.")

    @field_validator("repetition", "symbols", mode="before")
    @classmethod
    def _rules(cls, value: Any) -> Any:
        return {} if value is True else None if value is False else value  # true: the published limits

    @field_validator("language", mode="before")
    @classmethod
    def _languages(cls, value: Any) -> Any:
        codes = [value] if isinstance(value, str) else value
        if isinstance(codes, list):
            codes = [str(code).strip().lower() for code in codes]
            if not codes or not all(codes):
                raise ValueError("give a language code or a list of them, e.g. en or [en, fr]")
        return codes

    @field_validator("mean_word_length")
    @classmethod
    def _bounds(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and not 0 <= value[0] <= value[1]:
            raise ValueError("expected [shortest, longest] mean word length, e.g. [3, 10]")
        return value

    @model_validator(mode="after")
    def _word_bounds(self) -> CleanSection:
        if (self.min_words or 0) > (self.max_words or float("inf")):
            raise ValueError(f"min_words ({self.min_words}) is above max_words ({self.max_words})")
        return self
