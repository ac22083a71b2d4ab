"""Per-layer summary of a model: output shapes, parameters and multiply-adds, as the papers tabulate.

MACs are the multiply-adds of convolutions and dense layers for one image (the papers' and
torchvision's GMACs convention): nothing for normalisation, pooling, activations, biases or additions.
Everything is computed from shapes under `jax.eval_shape`; no activation is ever allocated.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import math
import sys
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.extend
import jax.numpy as jnp
from flax import traverse_util

from jaxcnn import registry


@dataclasses.dataclass(frozen=True)
class Row:
    """One module of the table: its path ("inception_3a/branch1"), output shape per image, counts."""

    path: str
    output_shape: str
    params: int
    macs: int


@dataclasses.dataclass(frozen=True)
class Summary:
    """The totals (trainable parameters, MACs for one image) and the printed rows."""

    params: int
    macs: int
    rows: list[Row]


_LAYERS = (nn.Conv, nn.ConvLocal, nn.ConvTranspose, nn.Dense)


def leaf_macs(module: nn.Module, x_shape: tuple[int, ...], y_shape: tuple[int, ...]) -> int | None:
    """Multiply-adds of one call of a conv or dense layer; None for any other module.

    Args:
      module: the called module. Modules that convolve through jax.lax directly may define
        `macs(self, input_shape, output_shape) -> int`, which is used when present.
      x_shape: the call's input shape, batch dimension included.
      y_shape: the call's output shape, batch dimension included.

    Returns:
      The MACs of the whole call (of one image when the batch is 1), or None.
    """
    if not _is_layer(module):
        return None
    if callable(getattr(type(module), "macs", None)):
        return int(module.macs(x_shape, y_shape))
    if isinstance(module, nn.ConvTranspose | nn.Conv | nn.ConvLocal):
        ks = module.kernel_size
        ks = (ks,) * (len(y_shape) - 2) if isinstance(ks, int) else ks
        if isinstance(module, nn.ConvTranspose):  # every input value meets the whole kernel
            return math.prod(x_shape) * math.prod(ks) * module.features
        # every output value sees k_h * k_w * C_in / groups inputs
        return math.prod(y_shape) * math.prod(ks) * x_shape[-1] // module.feature_group_count
    return math.prod(y_shape) * x_shape[-1]  # nn.Dense


def _is_layer(module: nn.Module) -> bool:
    return callable(getattr(type(module), "macs", None)) or isinstance(module, _LAYERS)


def _trace(model: nn.Module, input_shape: tuple[int, ...]):
    """Runs `model.init` under eval_shape on a batch of 1, recording every module call.

    Returns (param shapes, {module path: [first-call order, last output, MACs]}, total MACs).
    """
    calls: dict[tuple[str, ...], list] = {}
    inside_leaf = [False]  # a counted layer's own sub-calls (if any) must not be counted again

    def interceptor(next_fun, args, kwargs, context):
        if context.method_name in ("setup", "macs"):
            return next_fun(*args, **kwargs)
        entry = calls.setdefault(tuple(context.module.path), [len(calls), None, 0])
        outer, x = inside_leaf[0], args[0] if args else None
        leaf = not outer and context.method_name == "__call__" and _is_layer(context.module)
        inside_leaf[0] = outer or leaf
        try:
            y = next_fun(*args, **kwargs)
        finally:
            inside_leaf[0] = outer
        entry[1] = y
        if leaf and hasattr(x, "shape") and hasattr(y, "shape"):
            entry[2] += leaf_macs(context.module, tuple(x.shape), tuple(y.shape)) or 0
        return y

    kwargs = {"train": False} if "train" in inspect.signature(type(model).__call__).parameters else {}
    rngs = {"params": jax.random.PRNGKey(0), "dropout": jax.random.PRNGKey(1)}
    x = jax.ShapeDtypeStruct((1, *input_shape), jnp.float32)
    with nn.intercept_methods(interceptor):
        variables = jax.eval_shape(lambda x: model.init(rngs, x, **kwargs), x)
    return variables.get("params", {}), calls, sum(e[2] for e in calls.values())


def jaxpr_macs(jaxpr: jax.extend.core.Jaxpr) -> int:
    """Multiply-adds of the convolutions and matrix products of a jaxpr, its sub-jaxprs included.

    A convolution costs its output elements times the kernel's window and input features per group
    (divided by the input dilation of a transposed convolution: the zeros it inserts cost nothing);
    a dot_general its output elements times the contracted size. A scan counts each step.
    """
    total = 0
    for eqn in jaxpr.eqns:
        name, out = eqn.primitive.name, eqn.outvars[0].aval
        if name == "conv_general_dilated":
            rhs = eqn.invars[1].aval
            out_features = rhs.shape[eqn.params["dimension_numbers"].rhs_spec[0]]
            total += out.size * (rhs.size // out_features) // math.prod(eqn.params["lhs_dilation"])
        elif name == "dot_general":
            (contracting, _), _ = eqn.params["dimension_numbers"]
            total += out.size * math.prod(eqn.invars[0].aval.shape[d] for d in contracting)
        steps = eqn.params["length"] if name == "scan" else 1
        total += steps * sum(jaxpr_macs(sub) for sub in jax.extend.core.jaxprs_in_params(eqn.params))
    return total


def traced_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-adds of one image through `model` in eval mode, read from the jaxpr of its apply.

    Unlike `summary`, which counts the conv and dense modules it sees called, this counts every
    convolution and matrix product the computation contains, whoever wrote it (lax calls inside a
    module, a replacement `conv_general_dilated`), as XLA would run it.
    """
    kwargs = {"train": False} if "train" in inspect.signature(type(model).__call__).parameters else {}
    rngs = {"params": jax.random.PRNGKey(0), "dropout": jax.random.PRNGKey(1)}
    x = jax.ShapeDtypeStruct((1, *input_shape), jnp.float32)
    variables = jax.eval_shape(lambda x: model.init(rngs, x, **kwargs), x)
    closed = jax.make_jaxpr(lambda v, x: model.apply(v, x, **kwargs))(variables, x)
    return jaxpr_macs(closed.jaxpr)


def _shape_str(y: Any) -> str:
    # Per image, as the papers write it (55x55x96): the batch dimension of 1 is dropped.
    shapes = [
        "x".join(map(str, leaf.shape[1:])) or "1" for leaf in jax.tree.leaves(y) if hasattr(leaf, "shape")
    ]
    return ", ".join(shapes) or "-"


def _format_macs(macs: int) -> str:
    return f"{macs / 1e9:.3f} G" if macs >= 1e9 else f"{macs / 1e6:.2f} M"


def summary(
    name_or_module: str | nn.Module,
    input_shape: tuple[int, int, int] | None = None,
    *,
    print_fn: Callable[[str], Any] | None = print,
    depth: int = 1,
) -> Summary:
    """Prints and returns the per-layer table of a model: output shape, parameters, multiply-adds.

    Args:
      name_or_module: a registry name (see `list_models()`) or a flax linen module.
      input_shape: (H, W, C) of one image; defaults to the registered `input_size` for a name and
        is required for a module.
      print_fn: where the table's lines go; None prints nothing.
      depth: 1 gives one row per top-level child module in call order; 2, 3, ... add the
        modules nested that deep, indented under their parents.

    Returns:
      A `Summary` with the total trainable `params`, the total `macs` for one image (conv and
      dense multiply-adds) and the printed `rows`.
    """
    if isinstance(name_or_module, str):
        model = registry.create_model(name_or_module)
        input_shape = input_shape or registry.model_info(name_or_module).input_size
    elif isinstance(name_or_module, nn.Module):
        model = name_or_module
        if input_shape is None:
            raise ValueError("summary of a module needs input_shape=(H, W, C)")
    else:
        raise ValueError(f"expected a model name or a flax module, got {name_or_module!r}")
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    params, calls, total_macs = _trace(model, tuple(input_shape))
    flat = {k: v.size for k, v in traverse_util.flatten_dict(params).items()}

    def under(path, table):
        return sum(v for k, v in table.items() if k[: len(path)] == path)

    macs = {path: entry[2] for path, entry in calls.items()}
    order = sorted((p for p in calls if 1 <= len(p) <= depth), key=lambda p: calls[p][0])
    rows = [Row("/".join(p), _shape_str(calls[p][1]), under(p, flat), under(p, macs)) for p in order]
    result = Summary(params=sum(flat.values()), macs=total_macs, rows=rows)
    if print_fn is not None:
        _print_table(result, tuple(input_shape), print_fn)
    return result


def _print_table(result: Summary, input_shape: tuple[int, ...], print_fn: Callable[[str], Any]) -> None:
    head = ("layer", "output", "params", "MACs")
    cells = [(" " * 2 * r.path.count("/") + r.path.rsplit("/", 1)[-1], r.output_shape, f"{r.params:,}",
              f"{r.macs:,}") for r in result.rows]  # fmt: skip
    widths = [max(len(c[i]) for c in [head, *cells]) for i in range(4)]

    def line(c):
        return f"{c[0]:<{widths[0]}}  {c[1]:<{widths[1]}}  {c[2]:>{widths[2]}}  {c[3]:>{widths[3]}}"

    rule = "-" * len(line(head))
    print_fn(f"input {'x'.join(map(str, input_shape))}")
    for text in (line(head), rule, *map(line, cells), rule):
        print_fn(text)
    print_fn(f"Total params: {result.params:,} | Total MACs: {_format_macs(result.macs)} ({result.macs:,})")


def main(argv: list[str] | None = None) -> None:
    """`python -m jaxcnn.model_summary NAME [--input_size S] [--depth D]`."""
    parser = argparse.ArgumentParser(
        prog="python -m jaxcnn.model_summary", description=__doc__.split("\n")[0]
    )
    parser.add_argument("name", help="a registered model name")
    parser.add_argument(
        "--input_size", type=int, default=None, help="square input side (default: the paper's)"
    )
    parser.add_argument("--depth", type=int, default=1, help="nesting depth of the rows")
    args = parser.parse_args(argv)
    shape = None
    try:  # an unknown name or a size the model cannot take: one line, not a trace-time traceback
        info = registry.model_info(args.name)
        if args.input_size is not None:
            from jaxcnn import preflight

            channels = info.input_size[-1]
            model = registry.create_model(args.name)
            preflight.check_input_size(model, args.name, args.input_size, channels)
            shape = (args.input_size, args.input_size, channels)
    except ValueError as e:
        sys.exit(f"error: {e}")
    summary(args.name, shape, depth=args.depth)


if __name__ == "__main__":
    main()
