"""hfkit's own metrics, one `MetricSpec` per module (its `METRIC`); the module's name is the metric's
name in `eval.metrics`. A module added here is a metric: nothing else needs to know it."""

# The order lists and messages show them in (translation's first); a module not named here comes after.
LISTED_FIRST = ("sacrebleu", "chrf", "ter", "rouge", "exact_match", "squad", "squad_v2")
