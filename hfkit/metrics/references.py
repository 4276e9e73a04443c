"""Inputs shared by hfkit's text metric modules: their features and sacrebleu's reference streams."""


def text_features() -> list:
    """Predictions are strings; references are one string or a list of strings per prediction."""
    import datasets  # here, not above: bootstrap and per-example scores use reference_streams without it

    prediction = datasets.Value("string")
    return [
        datasets.Features({"predictions": prediction, "references": datasets.Sequence(datasets.Value("string"))}),
        datasets.Features({"predictions": prediction, "references": datasets.Value("string")}),
    ]


def reference_streams(references: list) -> list[list[str]]:
    """sacrebleu wants one stream per reference position, each as long as the predictions.

    `references` holds one string, or one list of strings, per prediction; every list must be
    as long as the others (sacrebleu's rule).
    """
    if references and isinstance(references[0], str):
        references = [[ref] for ref in references]
    per_prediction = len(references[0]) if references else 1
    if any(len(refs) != per_prediction for refs in references):
        raise ValueError("sacrebleu metrics need the same number of references for every prediction")
    return [[refs[i] for refs in references] for i in range(per_prediction)]
