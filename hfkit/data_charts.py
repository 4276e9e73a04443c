"""PNG charts for `hfkit data` (matplotlib, Agg): token-length histograms per split with their limits,
the training rows each cleaning step removed, and the languages of each split."""

from __future__ import annotations

from pathlib import Path

from hfkit.charts import COLORS, _pyplot, _save, file_name

LIMIT = "#c23b5b"


def length_chart(split: str, info: dict, preparation: dict, path: Path) -> Path | None:
    """Histograms of prompt (source, document) and target tokens before any cut, each with its limit
    drawn as a line and, in the title, what the real preparation cut or dropped."""
    parts = [part for part in ("prompt", "target") if info.get(part)]
    if not parts:
        return None
    plt = _pyplot()
    figure, axes = plt.subplots(1, len(parts), figsize=(5.6 * len(parts), 3.6), squeeze=False)
    limits = info["limits"]
    for axis, part in zip(axes[0], parts):
        values = info[part]
        key, limit = _limit_for(part, limits)
        top = max(max(values), limit if limit is not None else 0)
        axis.hist(values, bins=40, range=(0, top * 1.05 + 1), color=COLORS[0])
        if limit is not None:
            axis.axvline(limit, color=LIMIT, linestyle="--", linewidth=1.5)
            axis.text(limit, axis.get_ylim()[1] * 0.95, f" {key} = {limit:,}", color=LIMIT, fontsize=8, va="top",
                      ha="right" if limit > top * 0.7 else "left")
        axis.set_xlabel(info[f"{part}_label"], fontsize=9)
        axis.set_ylabel("examples", fontsize=9)
        axis.set_title(_what_happened(part, preparation, limits), fontsize=9)
        axis.grid(axis="y", alpha=0.3)
    figure.suptitle(f"{split}: token lengths before any cut ({len(info[parts[0]]):,} examples)", fontsize=11)
    return _save(figure, path)


def _limit_for(part: str, limits: dict) -> tuple[str, int | None]:
    """The limit a part is measured against: an encoder-decoder has one per part, the others one shared."""
    if len(limits) == 1:
        return next(iter(limits.items()))
    key = "data.max_target_length" if part == "target" else "data.max_source_length"
    return key, limits.get(key)


def _what_happened(part: str, preparation: dict, limits: dict) -> str:
    if "data.max_length" in limits:  # decoder-only: prompt + target share max_length
        if part == "prompt":
            return f"prompts cut (prompt + target > max_length): {preparation.get('prompt_truncated', 0):,}"
        return f"dropped (target alone leaves no room for a prompt): {preparation.get('target_too_long', 0):,}"
    if "data.max_source_length" in limits:
        if part == "prompt":
            return f"sources cut to max_source_length: {preparation.get('prompt_truncated', 0):,}"
        return f"dropped (target over max_target_length): {preparation.get('target_too_long', 0):,}"
    if "qa.max_seq_length" in limits:
        return f"windows: {preparation.get('windows', 0):,} for {preparation.get('examples', 0):,} examples"
    return f"blocks: {preparation.get('blocks', 0):,} of {next(iter(limits.values())):,} tokens"


def cleaning_chart(steps: list[dict], path: Path) -> Path | None:
    """The training split's rows after each step, and what each step removed."""
    if len(steps) < 2:
        return None
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(10, 0.45 * len(steps) + 1.4))
    names = [step["step"] for step in steps]
    rows = [step["rows"] for step in steps]
    axis.barh(range(len(steps)), rows, color=COLORS[0], label="rows after the step")
    removed = [step.get("removed") or 0 for step in steps]
    axis.barh(range(len(steps)), removed, left=rows, color=LIMIT, label="removed by the step")
    for row, (kept, gone) in enumerate(zip(rows, removed)):
        axis.text(kept + gone, row, f" {kept:,}" + (f" (-{gone:,})" if gone else ""), va="center", fontsize=8)
    axis.set_yticks(range(len(steps)), names, fontsize=8)
    axis.invert_yaxis()
    axis.set_xlim(0, max(r + g for r, g in zip(rows, removed)) * 1.25)
    axis.set_xlabel("training rows")
    axis.set_title("Training data, step by step")
    axis.legend(fontsize=8, loc="lower right")
    return _save(figure, path)


def language_chart(languages: dict[str, dict[str, int]], path: Path, shown: int = 8) -> Path | None:
    """Per split, the share of rows in each identified language (the most frequent `shown`, then other)."""
    if not any(languages.values()):
        return None
    plt = _pyplot()
    figure, axes = plt.subplots(1, len(languages), figsize=(4.4 * len(languages), 3.4), squeeze=False)
    for axis, (split, counts) in zip(axes[0], languages.items()):
        items = list(counts.items())[:shown]
        rest = sum(counts.values()) - sum(n for _, n in items)
        if rest:
            items.append(("other", rest))
        total = sum(counts.values()) or 1
        bars = axis.barh([language_name(code) for code, _ in items], [100 * n / total for _, n in items],
                         color=COLORS[2])
        axis.bar_label(bars, labels=[f"{n:,}" for _, n in items], fontsize=8, padding=2)
        axis.invert_yaxis()
        axis.set_xlim(0, 118)
        axis.set_xlabel("% of rows (label: rows)", fontsize=9)
        axis.set_title(f"{split} ({total:,} rows)", fontsize=10)
    figure.suptitle("Languages identified (py3langid, whole example)", fontsize=11)
    return _save(figure, path)


def language_name(code: str) -> str:
    """py3langid's code, with its two non-languages spelled out."""
    return {"": "no text", "zxx": "zxx (no language)"}.get(code, code)


def chart_path(out_dir: Path, prefix: str, name: str) -> Path:
    return out_dir / file_name(prefix, name)
