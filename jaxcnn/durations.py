"""Durations: a recipe's epochs and steps become step counts, once, after the training split is opened.

A recipe states each interval in epochs (`eval_every_epochs`, `checkpoint_every_epochs`) or in steps
(`eval_every_steps`, `checkpoint_every_steps`), exactly one of each pair, and the run's length as
`num_epochs` or `num_train_steps` (> 0 overrides num_epochs). `resolve` turns them into steps from
the number of training examples and the actual batch size, so `--config.batch_size=128` keeps the
recipe's epoch boundaries. The input pipeline, the schedule and the trainer all read these numbers.
"""

from __future__ import annotations

import dataclasses

INTERVALS = ("eval_every", "checkpoint_every")


@dataclasses.dataclass(frozen=True)
class Durations:
    """Every step count of a run.

    Attributes:
      steps_per_epoch: optimizer steps in one pass (the last partial global batch is dropped).
      num_train_steps: the run's length in steps.
      log_every, eval_every, checkpoint_every: intervals in steps (each >= 1).
      warmup_steps: the schedule's linear warm-up (config.schedule.warmup_epochs).
      boundaries_steps: the "step" schedule's decay steps (config.schedule.boundaries_epochs, or
        config.schedule.boundaries_steps as given: the papers that count iterations).
    """

    steps_per_epoch: int
    num_train_steps: int
    log_every: int
    eval_every: int
    checkpoint_every: int
    warmup_steps: int
    boundaries_steps: tuple[int, ...]


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
    """Whole global batches in one pass over `num_examples` (what every epoch of the pipeline yields)."""
    steps = num_examples // batch_size
    if steps == 0:
        raise ValueError(f"config.batch_size={batch_size} exceeds the {num_examples} training examples")
    return steps


def _is_number(value, kinds) -> bool:
    return isinstance(value, kinds) and not isinstance(value, bool)


def check_config(config) -> None:
    """Checks the duration keys without the dataset: one ValueError naming the bad value."""
    log = config.log_every_steps
    if not _is_number(log, int) or log <= 0:
        raise ValueError(f"config.log_every_steps must be a positive int, got {log!r}")
    for name in INTERVALS:
        epochs, steps = config[f"{name}_epochs"], config[f"{name}_steps"]
        if not _is_number(steps, int) or steps < 0:
            raise ValueError(f"config.{name}_steps must be an int > 0 (or 0: not set), got {steps!r}")
        if not _is_number(epochs, (int, float)) or epochs < 0:
            raise ValueError(f"config.{name}_epochs must be a number > 0 (or 0: not set), got {epochs!r}")
        if bool(epochs) == bool(steps):
            raise ValueError(
                f"set exactly one of config.{name}_epochs and config.{name}_steps (0 = not set), "
                f"got {epochs!r} and {steps!r}"
            )
    steps = config.num_train_steps
    if not _is_number(steps, int):
        raise ValueError(f"config.num_train_steps must be an int, got {steps!r}")
    epochs = config.num_epochs
    if steps <= 0 and (not _is_number(epochs, (int, float)) or epochs <= 0):
        raise ValueError(f"config.num_epochs must be > 0 (or num_train_steps > 0), got {epochs!r}")
    sched = config.schedule
    if sched.boundaries_epochs and sched.boundaries_steps:
        raise ValueError(
            "set at most one of config.schedule.boundaries_epochs and config.schedule.boundaries_steps, "
            f"got {tuple(sched.boundaries_epochs)!r} and {tuple(sched.boundaries_steps)!r}"
        )
    for step in sched.boundaries_steps:
        if not _is_number(step, int) or step < 0:
            raise ValueError(
                f"config.schedule.boundaries_steps must be ints >= 0, got {tuple(sched.boundaries_steps)!r}"
            )
    for epoch in (sched.warmup_epochs, *sched.boundaries_epochs):
        if not _is_number(epoch, (int, float)) or epoch < 0:
            raise ValueError(
                f"config.schedule epochs must be numbers >= 0, got warmup_epochs={sched.warmup_epochs!r}, "
                f"boundaries_epochs={tuple(sched.boundaries_epochs)!r}"
            )


def resolve(config, num_train_examples: int) -> Durations:
    """Every step count of the run from `num_train_examples` and config.batch_size.

    Args:
      config: the experiment config (checked by check_config).
      num_train_examples: the size of the opened training split.

    Returns:
      The run's Durations; an interval in epochs is rounded to the nearest step (at least 1).
    """
    check_config(config)
    per_epoch = steps_per_epoch(num_train_examples, config.batch_size)
    if config.num_train_steps > 0:
        total = config.num_train_steps
    else:
        total = int(round(config.num_epochs * per_epoch))

    def interval(name: str) -> int:
        epochs = config[f"{name}_epochs"]
        return max(1, int(round(epochs * per_epoch))) if epochs else config[f"{name}_steps"]

    return Durations(
        steps_per_epoch=per_epoch,
        num_train_steps=total,
        log_every=config.log_every_steps,
        eval_every=interval("eval_every"),
        checkpoint_every=interval("checkpoint_every"),
        warmup_steps=int(config.schedule.warmup_epochs * per_epoch),
        boundaries_steps=tuple(config.schedule.boundaries_steps)
        or tuple(int(e * per_epoch) for e in config.schedule.boundaries_epochs),
    )
