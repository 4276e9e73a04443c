"""The memory plan (`resources.memory_gb`): before the first step, the cheapest setting that fits.

The budget is a number of GiB, or `auto`: 85% of the memory available to this process (free RAM,
or free memory on its GPU, shared among the processes of the machine). The settings are tried in
this order, each cheaper in memory and dearer in time than the one before:
as is -> gradient checkpointing -> checkpointing with the batch cut into micro-batches of 1/2,
1/4, ... of it and gradient accumulation making up the rest. The batch of a step stays what the
recipe says, and so does its loss: Trainer normalises by `num_items_in_batch`, the target tokens
of the whole step (tests/test_memory_plan.py: the same losses to 1e-5). A recipe that sets
`training.gradient_checkpointing` keeps that choice, one that sets `gradient_accumulation_steps`
keeps its micro-batch; with both set the plan only warns when the probe is over the budget.

How a setting's peak is found: one forward + backward of the real training step (the task's
collator, hfkit's loss) on the worst batch the run can see, the `batch` longest training examples
padded together (no batch of the run is longer), measured by hfkit.memory apart from the run's own
peak: the memory in use before the plan + how far the step raises it + AdamW's two moments of every
trainable parameter (allocated at the first step). A prediction comes first: the same step on the
longest 1 and 2 examples gives a line in the number of rows (activations grow with the rows of a
padded batch), and a setting predicted above 3/4 of the memory actually available is never
allocated (it could not run safely); every other is measured before it is judged, because RSS does
not grow as a line: on SmolLM2 it predicted the 8 x 512 step at 3.74 GiB, measured 4.54 (-18%),
with checkpointing 1.75 against 1.82, the demo's step 1.63 against 1.70; on the tests' wide tiny
model it overestimated by up to 80%.
metrics.json keeps both numbers for every setting tried (`memory_plan.options`), with the run's
own training peak beside them. Evaluation and scoring are not planned: they hold no activations
for a backward pass.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from hfkit import distributed, memory
from hfkit.console import say
from hfkit.errors import HfkitError
from hfkit.schema import Recipe

AUTO_SHARE = 0.85
PROBE_LIMIT = 0.75  # of the memory available: a setting predicted above it is not run (predictions ran 18% low)
# A setting fits when its probe takes at most this share of the budget: training itself ran 0-14% above
# its probe (the allocator's free lists grow over many steps of different lengths): SmolLM2's demo 1.70
# -> 1.75 GiB, 8 x 512 with checkpointing 1.82 -> 1.86, the same as 8 micro-batches of 1 0.97 -> 1.11.
HEADROOM = 0.88
MIB_PER_GIB = 1024  # memory_gb is GiB, as peak_memory_mb is MiB
OPTIMIZER_STATES = 2  # AdamW keeps two moments per trainable parameter, in the parameter's dtype
CHECKPOINTING_KEYS = ("gradient_checkpointing", "activation_checkpointing")


class NothingFits(HfkitError):
    """No setting fits the budget; `plan` holds what was measured (kept in the failed run's record)."""

    def __init__(self, message: str, plan: dict):
        super().__init__(message)
        self.plan = plan


@dataclass(frozen=True)
class Setting:
    checkpointing: bool
    micro_batch: int
    accumulation: int  # gradient accumulation steps in all

    def label(self, batch: int) -> str:
        base = "gradient checkpointing" if self.checkpointing else "as is"
        if self.micro_batch == batch:
            return base
        return f"{base}, micro-batches of {self.micro_batch} x {batch // self.micro_batch}"


def plan(recipe: Recipe, trainer, previous: dict | None = None) -> dict | None:
    """Choose a setting, apply it to `trainer`, and return what metrics.json keeps as `memory_plan`.

    `previous`: the plan of the run being resumed, applied again as it was (the data position of a
    checkpoint counts micro-batches)."""
    if previous and previous.get("choice"):
        setting = Setting(**previous["choice"])
        _apply(trainer, setting)
        say(f"Memory plan: {setting.label(previous['batch'])}, as when the run started")
        return previous
    if recipe.resources.memory_gb == "off":
        return None
    reason = _cannot_plan(trainer)
    if reason:
        say(f"Memory plan: none ({reason})")
        return {"skipped": reason}
    started = time.perf_counter()
    budget, source = budget_mb(recipe.resources.memory_gb)
    probes = Probes(trainer, trainer.args.per_device_train_batch_size)
    result = distributed.broadcast(choose(recipe, probes, budget, source))  # every process trains as the main one decided
    if result.get("error"):
        raise NothingFits(result["error"], result)
    result["probe_seconds"] = round(time.perf_counter() - started, 1)
    setting = Setting(**result["choice"])
    _apply(trainer, setting)
    chosen = next(o for o in result["options"] if o["setting"] == setting.label(result["batch"]))
    say(f"Memory plan: {chosen['setting']} (peak {chosen['measured_gb']:.2f} GiB of {result['budget_gb']:.2f}; {source})")
    if result.get("warning"):
        say(f"[yellow]{result['warning']}[/yellow]")
    return result


def budget_mb(setting) -> tuple[float, str]:
    """The budget (MiB) and where it comes from."""
    if setting == "auto":
        available, source = memory.available_mb()
        return AUTO_SHARE * available, f"auto: {AUTO_SHARE:.0%} of {available / MIB_PER_GIB:.1f} GiB of {source}"
    return float(setting) * MIB_PER_GIB, f"resources.memory_gb: {setting}"


def ladder(recipe: Recipe, batch: int, accumulation: int, can_checkpoint: bool = True) -> tuple[list[Setting], bool]:
    """The settings to try, in order, and whether every lever is fixed (then the plan only warns)."""
    fixed = next((bool(recipe.training[key]) for key in CHECKPOINTING_KEYS if key in recipe.training),
                 None if can_checkpoint else False)
    split_fixed = "gradient_accumulation_steps" in recipe.training or bool(recipe.training.get("auto_find_batch_size"))
    settings = [Setting(False, batch, accumulation)] if not fixed else []
    if fixed is not False:
        settings.append(Setting(True, batch, accumulation))
    if not split_fixed:
        checkpointing = fixed is not False
        settings += [Setting(checkpointing, m, accumulation * batch // m)
                     for m in range(batch - 1, 0, -1) if batch % m == 0]
    return settings, fixed is not None and split_fixed


def choose(recipe: Recipe, probes: Probes, budget: float, source: str) -> dict:
    """Go down the ladder to the first setting whose measured peak fits HEADROOM of `budget` (MiB).

    A setting predicted above PROBE_LIMIT of the memory actually available is not run; every other
    one is measured before it is judged. With every lever fixed by the recipe,
    its own setting is measured and kept, with a warning when it is over."""
    batch, accumulation = probes.batch, probes.trainer.args.gradient_accumulation_steps
    can_checkpoint = bool(getattr(probes.trainer.model, "supports_gradient_checkpointing", False))
    settings, warn_only = ladder(recipe, batch, accumulation, can_checkpoint)
    step_budget = HEADROOM * budget
    result = {"budget_gb": _gb(budget), "budget": source, "step_budget_gb": _gb(step_budget), "batch": batch,
              "probe_batch": probes.shape, "resident_gb": _gb(probes.resident_mb),
              "optimizer_gb": _gb(probes.optimizer_mb), "options": []}
    if probes.resident_mb + probes.optimizer_mb > step_budget and not warn_only:
        return {**result, "error": _nothing_fits(
            recipe, budget, source, f"the model, data and libraries alone hold {_gb(probes.resident_mb):.2f} GiB "
            f"(+{_gb(probes.optimizer_mb):.2f} GiB of optimizer state) before a step runs")}
    room = PROBE_LIMIT * memory.available_mb()[0]
    for setting in settings:
        option = {"setting": setting.label(batch), **asdict(setting)}
        result["options"].append(option)
        if not warn_only:
            option["predicted_gb"] = _gb(probes.predict(setting.checkpointing, setting.micro_batch))
            if option["predicted_gb"] * MIB_PER_GIB > room:
                continue  # too close to what this machine has to be run; never allocated
        option["measured_gb"] = _gb(probes.measure(setting.checkpointing, setting.micro_batch))
        fits = option["measured_gb"] * MIB_PER_GIB <= step_budget
        if fits or warn_only:
            if not fits:
                result["warning"] = (f"Memory plan: the recipe's own setting ({setting.label(batch)}) peaks at "
                                     f"{option['measured_gb']:.2f} GiB, over the {_gb(step_budget):.2f} a step may "
                                     f"take of the budget of {_gb(budget):.2f}; the "
                                     "recipe sets training.gradient_checkpointing and gradient_accumulation_steps, "
                                     "so they stay")
            return {**result, "choice": asdict(setting)}
    smallest = result["options"][-1]  # the ladder goes down in memory
    peak = smallest.get("measured_gb", smallest["predicted_gb"])
    return {**result, "error": _nothing_fits(
        recipe, budget, source, f"the smallest setting, {smallest['setting']}, "
        f"{'peaks' if 'measured_gb' in smallest else 'is predicted to peak'} at {peak:.2f} GiB on the longest batch "
        f"({probes.shape}), over the {_gb(step_budget):.2f} GiB a step may take ({HEADROOM:.0%}: training runs a "
        "little above its probe)")}


def _nothing_fits(recipe: Recipe, budget: float, source: str, why: str) -> str:
    lighter = "peft.method: qlora" if recipe.peft.method != "qlora" else "a smaller peft.r"
    auto = f" ({source})" if recipe.resources.memory_gb == "auto" else ""
    return (f"resources.memory_gb: nothing fits {_gb(budget):.2f} GiB{auto}: {why}; raise resources.memory_gb, "
            f"lower data.max_length or training.per_device_train_batch_size, or use {lighter}")


class Probes:
    """Measured peaks (MiB) of one training step on the longest rows, by (checkpointing, rows)."""

    def __init__(self, trainer, batch: int):
        self.trainer, self.batch = trainer, batch
        self.rows = longest_rows(trainer, batch)
        self.optimizer_mb = OPTIMIZER_STATES * sum(p.numel() * p.element_size() for p in trainer.model.parameters()
                                                   if p.requires_grad) / 2**20
        self.shape = f"{len(self.rows)} x up to {max(len(row['input_ids']) for row in self.rows)} tokens"
        step_growth_mb(trainer, self.rows[:1], False)  # a process's first step allocates for good (thread pools, caches)
        memory.trim()
        self.resident_mb = memory.in_use_mb()  # what the step's own memory comes on top of
        self._peaks: dict[tuple[bool, int], float] = {}

    def measure(self, checkpointing: bool, rows: int) -> float:
        """The memory in use before the plan + the step's rise above what was in use when it began
        (steadier than each probe's own peak: a little freed memory stays with the process after
        every probe) + the optimizer's states."""
        key = (checkpointing, min(rows, len(self.rows)))
        if key not in self._peaks:
            growth = step_growth_mb(self.trainer, self.rows[:key[1]], checkpointing)
            self._peaks[key] = self.resident_mb + growth + self.optimizer_mb
        return self._peaks[key]

    def predict(self, checkpointing: bool, rows: int) -> float:
        """Measured up to 2 rows; beyond, the line through the peaks of 1 and 2 rows."""
        if rows <= 2 or len(self.rows) <= 2:
            return self.measure(checkpointing, rows)
        one, two = self.measure(checkpointing, 1), self.measure(checkpointing, 2)
        return two + (rows - 2) * max(two - one, 0.0)


def longest_rows(trainer, count: int) -> list[dict]:
    """The `count` longest training examples (input and label tokens), longest first, as the
    collator receives them."""
    import numpy as np
    import pyarrow.compute as pc

    dataset = trainer.train_dataset
    table = dataset.with_format("arrow")[:]  # in the order the sampler indexes it
    lengths = sum(pc.list_value_length(table[column]).to_numpy(zero_copy_only=False)
                  for column in ("input_ids", "labels") if column in table.column_names)
    order = [int(i) for i in np.argsort(-lengths, kind="stable")[:count]]
    chosen = trainer._remove_unused_columns(dataset.select(order), description="training")  # as Trainer does
    return [chosen[i] for i in range(len(chosen))]


def step_growth_mb(trainer, rows: list[dict], checkpointing: bool) -> float:
    """How far memory rises (MiB) in one forward + backward on `rows`, as training runs it; nothing it does
    stays: gradients are dropped, checkpointing switched back off, the RNG state restored (so a
    planned run draws the same dropout masks as an unplanned one)."""
    import torch

    model = trainer.model
    rng = torch.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    was_training = model.training
    set_checkpointing(model, checkpointing, trainer.args)
    model.train()
    out_of_memory = False
    try:
        with memory.measured(forget=True) as probe:
            try:
                inputs = trainer._prepare_inputs(trainer.data_collator(rows))
                trainer.compute_loss(model, inputs).backward()
                del inputs
            except torch.OutOfMemoryError:
                out_of_memory = True
            model.zero_grad(set_to_none=True)
    finally:
        set_checkpointing(model, False, trainer.args)
        model.train(was_training)
        torch.set_rng_state(rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)
    return float("inf") if out_of_memory else probe.growth_mb


def set_checkpointing(model, on: bool, args) -> None:
    """Gradient checkpointing on or off, with the recipe's checkpointing arguments, as Trainer sets it."""
    if on:
        kwargs = dict(args.activation_checkpointing_kwargs or {})
        every, offload = kwargs.pop("every_n_layers", 1), kwargs.pop("offload", False)
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs or None, every_n_layers=every,
                                              offload=offload)
    elif getattr(model, "is_activation_checkpointing", False):
        model.activation_checkpointing_disable()


def _apply(trainer, setting: Setting) -> None:
    args = trainer.args
    args.per_device_train_batch_size = setting.micro_batch
    args.gradient_accumulation_steps = setting.accumulation
    args.activation_checkpointing = args.gradient_checkpointing = setting.checkpointing
    trainer._train_batch_size = args.train_batch_size  # Trainer reads it from args once, when built


def _cannot_plan(trainer) -> str | None:
    if not memory.can_reset_peak():
        return "this system cannot measure a probe's peak apart from the run's (no /proc/self/clear_refs)"
    if not hasattr(trainer.train_dataset, "with_format") or not hasattr(trainer.train_dataset, "__len__"):
        return "a streamed training split has no lengths before training; set the batch and checkpointing yourself"
    if trainer.is_deepspeed_enabled or trainer.is_fsdp_enabled:
        return "DeepSpeed and FSDP shard the model and plan their own memory"
    return None


def _gb(mb: float) -> float:
    return round(mb / MIB_PER_GIB, 3) if mb != float("inf") else float("inf")
