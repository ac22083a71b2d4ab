"""The report of a directory of runs: `python -m jaxcnn.report DIR` writes DIR/report.md, report.json
and plots/*.png.

Every directory under DIR with a manifest (config.json) is a run. Runs are grouped by the config keys
whose values differ between their manifests (the swept keys; the seed and the keys free to change on
resume are not grouping keys), one row per combination: the number of finished seeds, the final
evaluation's top-1 and top-5 error as mean +- std over seeds (the n-1 sample std) with min and max,
the steps, the training and evaluation wall time (and each run's whole, from the sweep), and, where
the model's registry facts report a number for the dataset (`reported["DATASET/test_error"]` or
`"DATASET/top1_error"`; `"DATASET_distortions/..."` for a run trained with the lecun_distortions
preset), the paper's value and our mean minus it. Only finished runs are averaged; unfinished,
running, failed and diverged runs are listed by name with their state. The plots draw training loss,
training error and evaluation error against epochs (steps when a run's epoch length cannot be resolved
here), one line (the mean over seeds) per combination with the seeds' min-max spread as a band.
root/hparams holds the finished runs for TensorBoard's HParams view.

`--train_error_below=25,15` adds, per combination, the steps at which the logged training error first
falls to each threshold (percent), over the seeds that reach it (AlexNet Fig. 1's measure: steps to
25% training error).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import statistics
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from jaxcnn import run_dir, runs  # noqa: E402

# Augmentation presets under which a paper reports a separate number, and the suffix of the registry
# key that holds it: lenet5's "mnist_distortions/test_error" (LeCun et al. 1998, 0.8%).
REPORTED_AUGMENT = {"lecun_distortions": "distortions"}

PLOTS = (  # (metric, file, title, scale)
    ("train/loss", "train_loss.png", "training loss", 1.0),
    ("train/top1_error", "train_error.png", "training top-1 error (%)", 100.0),
    ("eval/top1_error", "eval_error.png", "evaluation top-1 error (%)", 100.0),
)


def load_runs(root: str) -> list[dict]:
    """Every run under `root`: its name, config, state, records and final numbers."""
    loaded = []
    for workdir in runs.find_runs(root):
        manifest = run_dir.read_manifest(workdir) or {}
        config = manifest.get("config", {})
        try:
            records = runs.read_metrics(workdir)
        except ValueError as e:  # a damaged metrics file: the run is listed, not averaged
            records, state = [], (runs.FAILED, str(e))
        else:
            state = runs.state(workdir, config, records)
        resolved = runs.resolve_durations(config)
        final = [r for r in records if runs.FINAL_KEY in r]
        loaded.append(
            {
                "name": os.path.relpath(workdir, root),
                "workdir": workdir,
                "config": config,
                "flat": run_dir.flatten(config),
                "state": state[0],
                "detail": state[1],
                "records": records,
                "steps_per_epoch": resolved.steps_per_epoch if resolved else None,
                "final": final[-1] if final else {},
                "train_seconds": train_seconds(records, config.get("batch_size", 0)),
                "eval_seconds": sum(r.get("eval/seconds", 0.0) for r in records),
                "wall_seconds": runs.read_status(workdir).get("wall_seconds"),
            }
        )
    return loaded


def train_seconds(records: list[dict], batch_size: int) -> float:
    """The training wall time: the sum of train/seconds, or (older runs) of the windows' steps over
    their images per second."""
    total, previous = 0.0, 0
    for r in records:
        if "train/loss" not in r:
            continue
        if "train/seconds" in r:
            total += r["train/seconds"]
        elif r.get("train/images_per_second") and batch_size:
            total += (r["step"] - previous) * batch_size / r["train/images_per_second"]
        previous = r["step"]
    return total


def group_keys(loaded: list[dict], order: list[str] = ()) -> list[str]:
    """The config keys whose values differ between runs (seed and free keys excluded), in `order`
    first (the sweep's), then sorted."""
    keys = set().union(*(r["flat"] for r in loaded)) if loaded else set()
    varying = {
        k
        for k in keys
        if k != "seed"
        and not run_dir.is_free(k)
        and len({json.dumps(r["flat"].get(k, "<absent>")) for r in loaded}) > 1
    }
    return [k for k in order if k in varying] + sorted(varying - set(order))


def _label(values: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items()) or "all runs"


def _stats(values: list[float]) -> dict:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
        "values": values,
    }


def _reported(config: dict) -> dict:
    """The paper's top-1/top-5 errors (percent) for this model on this dataset, from the registry."""
    from jaxcnn import registry

    try:
        info = registry.model_info(config.get("model", {}).get("name", ""))
    except ValueError:
        return {}
    dataset = config.get("dataset", {}).get("name", "").split("/")[0]
    augment = config.get("input", {}).get("train_augment", "none")
    if augment in REPORTED_AUGMENT:
        dataset = f"{dataset}_{REPORTED_AUGMENT[augment]}"
    facts = info.reported
    top1 = facts.get(f"{dataset}/test_error", facts.get(f"{dataset}/top1_error"))
    top5 = facts.get(f"{dataset}/top5_error")
    return {k: v for k, v in (("top1", top1), ("top5", top5)) if v is not None}


def steps_to_train_error(records: list[dict], threshold: float) -> int | None:
    """The first logged step whose training top-1 error (a window's mean) is at most `threshold`
    percent; None if no window reaches it."""
    for r in records:
        if "train/top1_error" in r and 100 * r["train/top1_error"] <= threshold:
            return r["step"]
    return None


def aggregate(loaded: list[dict], keys: list[str], train_error_below: tuple[float, ...] = ()) -> list[dict]:
    """One entry per combination of `keys`' values (in first-seen order): finished runs averaged.

    train_error_below: thresholds (percent); each row gets row["steps_to_train_error"][str(t)]: the
    steps to reach t over the seeds that do (stats), and how many of the finished seeds do."""
    groups: dict[str, dict] = {}
    for r in loaded:
        values = {k: r["flat"].get(k) for k in keys}
        group = groups.setdefault(_label(values), {"label": _label(values), "values": values, "runs": []})
        group["runs"].append(r)
    rows = []
    for group in groups.values():
        done = [r for r in group["runs"] if r["state"] == runs.FINISHED]
        row = {
            "label": group["label"],
            "values": group["values"],
            "n": len(done),
            "n_runs": len(group["runs"]),
            "runs": [r["name"] for r in done],
            "not_averaged": {
                r["name"]: f"{r['state']}: {r['detail']}" for r in group["runs"] if r not in done
            },
            "reported": _reported(group["runs"][0]["config"]),
        }
        if done:
            row["top1_error"] = _stats([100 * r["final"][runs.FINAL_KEY] for r in done])
            if all("eval/top5_error" in r["final"] for r in done):
                row["top5_error"] = _stats([100 * r["final"]["eval/top5_error"] for r in done])
            row["steps"] = sorted({r["final"]["step"] for r in done})
            row["train_seconds"] = statistics.fmean(r["train_seconds"] for r in done)
            row["eval_seconds"] = statistics.fmean(r["eval_seconds"] for r in done)
            walls = [r["wall_seconds"] for r in done if r["wall_seconds"] is not None]
            # The sweep's wall time of each run's process: start-up, compilation, data and checkpoints too.
            row["wall_seconds"] = statistics.fmean(walls) if walls else None
            for k in ("top1", "top5"):
                if k in row["reported"] and f"{k}_error" in row:
                    row[f"{k}_vs_paper"] = row[f"{k}_error"]["mean"] - row["reported"][k]
        if train_error_below:
            row["steps_to_train_error"] = {}
            for t in train_error_below:
                reached = [s for s in (steps_to_train_error(r["records"], t) for r in done) if s is not None]
                row["steps_to_train_error"][f"{t:g}"] = {
                    "reached": len(reached),
                    "of": len(done),
                    "steps": _stats([float(s) for s in reached]) if reached else None,
                }
        rows.append(row)
    return rows


def _fmt_stats(s: dict | None) -> str:
    if not s:
        return "-"
    return f"{s['mean']:.2f} ± {s['std']:.2f} ({s['min']:.2f}, {s['max']:.2f})"


def _fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def _paper(row: dict, k: str) -> str:
    if k not in row["reported"]:
        return "-"
    diff = row.get(f"{k}_vs_paper")
    return f"{row['reported'][k]:.2f}" + (f" ({diff:+.2f})" if diff is not None else "")


def markdown(root: str, keys: list[str], rows: list[dict], loaded: list[dict], plots: list[str]) -> str:
    """report.md: the table, the runs left out and why, the plots."""
    lines = [f"# Report of {root}", ""]
    lines.append(
        f"{len(loaded)} runs; grouped by {', '.join(keys) or 'nothing (one combination)'}. Errors in %, "
        "final evaluation, mean ± std over seeds (min, max); only finished runs are averaged. "
        "Paper: the model's reported error on this dataset (ours minus the paper's)."
    )
    lines += [
        "",
        "| combination | n | top-1 error | top-5 error | paper top-1 | steps | train time | eval time "
        "| wall time |",
    ]
    lines.append("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        n = f"{row['n']}" if row["n"] == row["n_runs"] else f"{row['n']} of {row['n_runs']}"
        steps = ", ".join(str(s) for s in row.get("steps", [])) or "-"
        lines.append(
            f"| {row['label']} | {n} | {_fmt_stats(row.get('top1_error'))} | "
            f"{_fmt_stats(row.get('top5_error'))} | {_paper(row, 'top1')} | {steps} | "
            f"{_fmt_seconds(row.get('train_seconds'))} | {_fmt_seconds(row.get('eval_seconds'))} | "
            f"{_fmt_seconds(row.get('wall_seconds'))} |"
        )
    thresholds = list(rows[0].get("steps_to_train_error", {})) if rows else []
    if thresholds:
        lines += [
            "",
            "## Steps to reach a training error",
            "",
            "The first logged step whose training top-1 error (the mean over the log window) is at most "
            "the threshold; mean ± std (min, max) over the finished seeds that reach it.",
            "",
            "| combination | " + " | ".join(f"steps to ≤ {t}%" for t in thresholds) + " |",
            "|---|" + "---|" * len(thresholds),
        ]
        for row in rows:
            cells = []
            for t in thresholds:
                entry = row["steps_to_train_error"][t]
                if entry["steps"] is None:
                    cells.append(f"not reached (0 of {entry['of']})")
                    continue
                s = entry["steps"]
                text = f"{s['mean']:.0f} ± {s['std']:.0f} ({s['min']:.0f}, {s['max']:.0f})"
                cells.append(
                    text
                    + ("" if entry["reached"] == entry["of"] else f", {entry['reached']} of {entry['of']}")
                )
            lines.append(f"| {row['label']} | " + " | ".join(cells) + " |")
    left_out = [(name, why) for row in rows for name, why in row["not_averaged"].items()]
    if left_out:
        lines += ["", "## Runs not averaged", ""]
        lines += [f"- `{name}`: {why}" for name, why in left_out]
    if plots:
        lines += ["", "## Plots", ""]
        lines += [f"![{p}](plots/{p})" for p in plots]
    lines += ["", f"TensorBoard's HParams view of the finished runs: `tensorboard --logdir {root}/hparams`."]
    return "\n".join(lines) + "\n"


def _series(run: dict, metric: str, scale: float, epochs: bool) -> dict[float, float]:
    per = run["steps_per_epoch"] if epochs else None
    return {(r["step"] / per if per else r["step"]): scale * r[metric] for r in run["records"] if metric in r}


def plot(root: str, rows: list[dict], loaded: list[dict], thresholds: tuple[float, ...] = ()) -> list[str]:
    """plots/*.png: each metric against epochs (steps where unknown), a mean line and min-max band
    per combination, over its finished runs; the training-error thresholds as dashed lines.
    Returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_name = {r["name"]: r for r in loaded}
    finished = [by_name[name] for row in rows for name in row["runs"]]
    epochs = bool(finished) and all(r["steps_per_epoch"] for r in finished)
    os.makedirs(os.path.join(root, "plots"), exist_ok=True)
    written = []
    for metric, filename, title, scale in PLOTS:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        drawn = False
        for row in rows:
            series = [_series(by_name[name], metric, scale, epochs) for name in row["runs"]]
            xs = sorted(set.intersection(*(set(s) for s in series))) if series else []
            if not xs:
                continue
            values = [[s[x] for s in series] for x in xs]
            mean = [statistics.fmean(v) for v in values]
            marker = "o" if len(xs) <= 30 else None  # a lone evaluation is a point, not a line
            (line,) = ax.plot(xs, mean, marker=marker, markersize=4, label=f"{row['label']} (n={row['n']})")
            lo, hi = [min(v) for v in values], [max(v) for v in values]
            if len(xs) == 1:  # a band one point wide is invisible: a bar instead
                yerr = [[mean[0] - lo[0]], [hi[0] - mean[0]]]
                ax.errorbar(xs, mean, yerr=yerr, color=line.get_color(), capsize=5, alpha=0.6)
            elif len(series) > 1:
                ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
            drawn = True
        if not drawn:
            plt.close(fig)
            continue
        if metric == "train/top1_error":
            for t in thresholds:
                ax.axhline(t, color="gray", linestyle="--", linewidth=0.8)
        ax.set_xlabel("epoch" if epochs else "step")
        ax.set_ylabel(title)
        ax.set_title(f"{title}: mean over seeds, band = min-max")
        if metric == "train/loss" and all(v > 0 for line in ax.get_lines() for v in line.get_ydata()):
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(root, "plots", filename), dpi=100)
        plt.close(fig)
        written.append(filename)
    return written


def write_hparams(root: str, keys: list[str], loaded: list[dict]) -> str | None:
    """TensorBoard's HParams view of the finished runs under root/hparams (`tensorboard --logdir
    root/hparams`): one trial per run, its swept values and seed, its final errors. Returns the dir."""
    finished = [r for r in loaded if r["state"] == runs.FINISHED]
    if not finished:
        return None
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp

    metrics = ("eval/top1_error", "eval/top5_error", "eval/loss")
    directory = os.path.join(root, "hparams")
    shutil.rmtree(directory, ignore_errors=True)  # the report's own output: rewritten, never appended to
    with tf.summary.create_file_writer(directory).as_default():
        hp.hparams_config(
            hparams=[hp.HParam(k) for k in [*keys, "seed"]], metrics=[hp.Metric(m) for m in metrics]
        )
    for r in finished:
        values = {
            k: v if isinstance(v, (bool, int, float, str)) else json.dumps(v)
            for k, v in ((k, r["flat"].get(k)) for k in [*keys, "seed"])
        }
        with tf.summary.create_file_writer(os.path.join(directory, r["name"])).as_default():
            hp.hparams(values, trial_id=r["name"])
            for m in metrics:
                if m in r["final"]:
                    tf.summary.scalar(m, r["final"][m], step=r["final"]["step"])
    return directory


def _sweep_values(root: str) -> dict[str, list[str]]:
    """The sweep's keys and values as given on its command line (DIR/sweep.json), in order."""
    try:
        with open(os.path.join(root, "sweep.json")) as f:
            return dict(json.load(f).get("sweep", {}))
    except (OSError, ValueError, AttributeError, TypeError):
        return {}


def _matches(given: str, value) -> bool:
    """Whether the command line's `given` (a string) is the config's parsed `value`."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return float(given) == value
        except ValueError:
            return False
    return given == (json.dumps(value) if isinstance(value, (bool, list, dict)) else str(value))


def sweep_sort(rows: list[dict], values: dict[str, list[str]]) -> list[dict]:
    """The rows in the sweep's order: by each swept key's values as the command line listed them
    (rows with a value it does not list, or keys it did not sweep, keep their order, after)."""

    def rank(row):
        out = []
        for key, given in values.items():
            if key in row["values"]:
                found = [i for i, g in enumerate(given) if _matches(g, row["values"][key])]
                out.append(found[0] if found else len(given))
        return out

    return sorted(rows, key=rank)


def _json_ready(value):
    """NaN and infinities as strings: report.json stays strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_ready(v) for v in value]
    return value


def report(root: str, train_error_below: tuple[float, ...] = ()) -> dict:
    """Writes root/report.md, root/report.json and root/plots/*.png; returns report.json's content.

    train_error_below: training-error thresholds (percent) to report the steps to (see aggregate).

    Raises:
      FileNotFoundError: root is not a directory, or holds no run (no config.json under it).
    """
    loaded = load_runs(root)
    if not loaded:
        raise FileNotFoundError(f"no runs under {root} (no directory with a {run_dir.MANIFEST_FILE})")
    swept = _sweep_values(root)
    keys = group_keys(loaded, list(swept))
    rows = sweep_sort(aggregate(loaded, keys, tuple(train_error_below)), swept)
    plots = plot(root, rows, loaded, tuple(train_error_below))
    hparams = write_hparams(root, keys, loaded)
    text = markdown(root, keys, rows, loaded, plots)
    print(text, end="")  # printed before written
    with open(os.path.join(root, "report.md"), "w") as f:
        f.write(text)
    result = {
        "group_keys": keys,
        "combinations": rows,
        "runs": [
            {
                "name": r["name"],
                "state": r["state"],
                "detail": r["detail"],
                "seed": r["flat"].get("seed"),
                "values": {k: r["flat"].get(k) for k in keys},
                "final": r["final"],
                "steps_per_epoch": r["steps_per_epoch"],
                "train_seconds": r["train_seconds"],
                "eval_seconds": r["eval_seconds"],
                "wall_seconds": r["wall_seconds"],
            }
            for r in loaded
        ],
        "plots": [f"plots/{p}" for p in plots],
        "hparams": os.path.relpath(hparams, root) if hparams else None,
    }
    result = _json_ready(result)
    with open(os.path.join(root, "report.json"), "w") as f:
        json.dump(result, f, indent=2, sort_keys=True, allow_nan=False)
    return result


_USAGE = (
    "usage: python -m jaxcnn.report DIR [--train_error_below=25,15] (DIR: a directory of runs, e.g. a "
    "sweep's --workdir; the thresholds in percent)"
)


def parse_thresholds(text: str) -> tuple[float, ...]:
    """ "25,15" -> (25.0, 15.0); ValueError names a value that is not a percentage in (0, 100]."""
    values = []
    for part in text.split(","):
        try:
            value = float(part)
        except ValueError:
            value = float("nan")
        if not 0 < value <= 100:
            raise ValueError(f"--train_error_below={text}: {part!r} is not a percentage in (0, 100]")
        values.append(value)
    return tuple(values)


def main(argv: list[str]) -> None:
    positional = [a for a in argv if not a.startswith("-")]
    flags = [a for a in argv if a.startswith("-")]
    if len(positional) != 1 or any(not f.startswith("--train_error_below=") for f in flags):
        sys.exit(_USAGE)
    try:
        thresholds = ()
        for flag in flags:
            thresholds += parse_thresholds(flag.partition("=")[2])
        report(positional[0], thresholds)
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main(sys.argv[1:])
