"""config.task: which task a run is ("classification" or "segmentation"), and its checks before
anything is opened or compiled. The segmentation task itself is jaxcnn/segmentation.py; this module
imports nothing of the trainer, so jaxcnn.build can check a config without importing the evaluator."""

from __future__ import annotations


class EvaluationAbandoned(Exception):
    """An evaluation (either task's) was stopped between two batches because `stop()` said so (a
    preemption notice); the trainer saves the step and exits as preempted."""


TASKS = ("classification", "segmentation")
SEGMENTATION_FAMILIES = ("unet",)  # registry families whose models return per-pixel logits
# What a segmentation run logs that lower-is-better rankings (best checkpoints, plateau) may use.
LOWER_IS_BETTER = ("eval/pixel_error", "eval/loss")


def task_of(config) -> str:
    return config.get("task", "classification")


def check_task(config) -> None:
    """config.task is known and matches the model: one ValueError before anything is compiled."""
    from jaxcnn import registry

    task = task_of(config)
    if task not in TASKS:
        raise ValueError(f"config.task={task!r}; allowed: {', '.join(TASKS)}")
    family = registry.model_info(config.model.name).family
    dense = family in SEGMENTATION_FAMILIES
    if dense != (task == "segmentation"):
        kind = "segmentation" if dense else "classification"
        raise ValueError(
            f"config.task={task!r} but config.model.name={config.model.name!r} is a {kind} model; "
            f"set config.task={kind!r} or a {task} model"
        )
    if task != "segmentation":
        return
    if tuple(config.eval.protocols) != ("center",):
        raise ValueError(
            f"config.eval.protocols={tuple(config.eval.protocols)!r}; segmentation evaluates whole images "
            "by overlap-tile only: ('center',)"
        )
    ranked = {
        "config.checkpoint.best_metric": config.checkpoint.best_metric
        if config.checkpoint.keep_best
        else None
    }
    if config.schedule.name == "plateau":
        ranked["config.schedule.plateau_metric"] = config.schedule.plateau_metric
    for key, metric in ranked.items():
        if metric is not None and metric not in LOWER_IS_BETTER:
            raise ValueError(f"{key}={metric!r}; a segmentation run logs: {', '.join(LOWER_IS_BETTER)}")
