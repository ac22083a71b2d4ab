"""Pretrained weights: the table (jaxcnn/weights_table.py), loading torchvision state dicts onto
jaxcnn's variable trees, and a cache of the converted trees.

    model, variables = jaxcnn.load_pretrained("resnet50", "IMAGENET1K_V2")
    logits = model.apply(variables, images)           # images NHWC, preprocessed as the row says

Conversion: conv weights OIHW -> HWIO; Linear weights transposed; the first fc after a flatten
(alexnet's and vgg's fc6) has its input rows permuted from torch's CHW flatten order to jaxcnn's HWC;
BatchNorm weight/bias -> params scale/bias, running_mean/var -> batch_stats mean/var (both use
eps 1e-5). Names are mapped per family, explicitly (`_module_path`). torch is needed only to read
a .pth file; the converted tree is cached as .npz in ~/.cache/jaxcnn/weights keyed by the file's
SHA-256, and later loads of that file read the .npz.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from jaxcnn import registry
from jaxcnn.data.archives import sha256_file
from jaxcnn.weights_table import IMAGENET_MEAN, WEIGHTS, Weights

CACHE_DIR = Path(os.environ.get("JAXCNN_CACHE", Path.home() / ".cache" / "jaxcnn")) / "weights"
DOWNLOAD_TIMEOUT_S = 10


def list_pretrained(model: str | None = None) -> list[dict]:
    """The weights table as dicts (one per (model, tag)), optionally for one model."""
    return [dataclasses.asdict(w) for w in WEIGHTS if model is None or w.model == model]


def weights_markdown() -> str:
    """The weights table as the README's markdown (model, tag, acc@1, acc@5, params, GMACs,
    preprocessing): `python -c "import jaxcnn.pretrained as p; print(p.weights_markdown())"`."""
    lines = [
        "| model | tag | acc@1 | acc@5 | params | GMACs | preprocessing |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for w in WEIGHTS:
        info = registry.model_info(w.model)
        norm = "mean/std 0.5 (transform_input)" if w.mean != IMAGENET_MEAN else "ImageNet mean/std"
        prep = f"resize {w.resize}, crop {w.crop}, {w.interpolation}, {norm}"
        lines.append(
            f"| `{w.model}` | {w.tag} | {w.acc1:.3f} | {w.acc5:.3f} | {info.num_params / 1e6:.1f} M | "
            f"{info.gmacs:.2f} | {prep} |"
        )
    return "\n".join(lines)


def find_row(name: str, tag: str | None = None) -> dict:
    """The table's row of (name, tag) as a dict (tag None: the model's latest); ValueError naming the
    models with weights or the model's tags."""
    return dataclasses.asdict(_find(name, tag))


def input_adapter(row: dict, mean, std):
    """x -> x', from images standardised with (mean, std) to the row's normalisation, or None if equal.

    x' = (x * std + mean - row mean) / row std per channel: torchvision's `transform_input` for its
    GoogLeNet and Inception v3 weights, for a pipeline that standardises with ImageNet's statistics.
    """
    mean, std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
    row_mean, row_std = np.asarray(row["mean"], np.float32), np.asarray(row["std"], np.float32)
    if np.array_equal(mean, row_mean) and np.array_equal(std, row_std):
        return None
    scale, shift = std / row_std, (mean - row_mean) / row_std
    return lambda x: x * scale + shift


@dataclasses.dataclass(frozen=True)
class InputAdapted:
    """A model whose `apply` first maps the images with `adapt` (input_adapter): what evaluation
    calls of a model, for weights that expect another normalisation than the pipeline's."""

    model: object
    adapt: object

    def apply(self, variables, images, *args, **kwargs):
        return self.model.apply(variables, self.adapt(images), *args, **kwargs)


def with_input_adapter(model, adapt):
    """`model` itself when `adapt` is None, else InputAdapted(model, adapt)."""
    return model if adapt is None else InputAdapted(model, adapt)


def _find(name: str, tag: str | None) -> Weights:
    rows = [w for w in WEIGHTS if w.model == name]
    if not rows:
        with_weights = sorted({w.model for w in WEIGHTS})
        raise ValueError(f"no pretrained weights for model {name!r}; models with weights: {with_weights}")
    if tag is None:
        return rows[-1]  # the latest release, as torchvision's DEFAULT
    for w in rows:
        if w.tag == tag:
            return w
    raise ValueError(f"unknown tag {tag!r} for {name!r}; allowed: {[w.tag for w in rows]}")


def _download(weights: Weights) -> Path:
    """The file of `weights` in CACHE_DIR, downloaded (prefix of its SHA-256 checked) if absent."""
    target = CACHE_DIR / weights.url.rsplit("/", 1)[1]
    if target.exists():
        return target
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    try:
        with (
            urllib.request.urlopen(weights.url, timeout=DOWNLOAD_TIMEOUT_S) as response,
            open(partial, "wb") as f,
        ):
            shutil.copyfileobj(response, f)
    except (urllib.error.URLError, OSError) as e:
        partial.unlink(missing_ok=True)
        raise FileNotFoundError(
            f"cannot download {weights.url} ({getattr(e, 'reason', e)}); download it elsewhere and pass "
            f"load_pretrained({weights.model!r}, path=FILE), or put it in {CACHE_DIR}"
        ) from None
    digest = sha256_file(partial)
    if not digest.startswith(weights.sha256):
        partial.unlink()
        raise ValueError(
            f"checksum mismatch for {target.name} from {weights.url}: expected a sha256 starting "
            f"{weights.sha256}, got {digest}; nothing was cached"
        )
    partial.rename(target)
    return target


# ---- name mapping: torch module path -> jaxcnn module path, per family ----

_GOOGLENET = {
    "conv1": "conv1_7x7", "conv2": "conv2_3x3_reduce", "conv3": "conv2_3x3", "branch1": "conv_1x1",
    "branch2.0": "conv_3x3_reduce", "branch2.1": "conv_3x3", "branch3.0": "conv_5x5_reduce",
    "branch3.1": "conv_5x5", "branch4.1": "pool_proj",
}  # fmt: skip


def _family(name: str) -> str:
    for family in ("alexnet", "vgg", "googlenet", "inception", "densenet", "mobilenet_v2"):
        if name.startswith(family):
            return family
    if re.match(r"(wide_)?res(net|next)", name):
        return "resnet"
    raise ValueError(f"no torchvision conversion for model {name!r}")


def _numbered(names):
    """Sort layer names by the numbers in them (conv2_10 after conv2_9; branch1_1a before branch1_1b)."""
    return sorted(names, key=lambda n: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", n)])


def _module_paths(
    family: str, torch_modules: list[str], jax_modules: list[str], conv_modules: set[str] = frozenset()
) -> dict[str, str]:
    """torch module path (e.g. "layer1.0.downsample.1") -> jaxcnn module path ("layer1_0/downsample_bn").

    `torch_modules` are in the state dict's (declaration) order; `jax_modules` are the target's
    module paths. Sequential nets (alexnet, vgg) and Inception v3's branches map by position in
    declaration order: torchvision numbers them by index, jaxcnn by paper names, same order.
    `conv_modules`: the torch modules with 4-D weights (tells a vgg_bn's convs from its BNs).
    """
    out = {}
    if family in ("alexnet", "vgg"):
        for kind, prefix in (("conv", "features."), ("bn", "features."), ("fc", "classifier.")):
            targets = _numbered(m for m in jax_modules if m.startswith(kind))
            sources = [m for m in torch_modules if m.startswith(prefix)]
            if kind != "fc":  # features.* holds convs and BNs alternately (BN nets): split by the table
                sources = [m for m in sources if (m in conv_modules) == (kind == "conv")]
            out.update(zip(sources, targets))
        return out
    for m in torch_modules:
        p = m
        if family == "resnet":
            p = re.sub(r"^layer(\d+)\.(\d+)\.", r"layer\1_\2/", p)
            p = p.replace("downsample.0", "downsample_conv").replace("downsample.1", "downsample_bn")
        elif family == "googlenet":
            head, _, rest = p.partition(".")
            head = re.sub(r"^inception(\d\w)$", r"inception_\1", head)
            for k, v in _GOOGLENET.items():  # branchN.i.conv -> conv_...; conv1.bn -> conv1_7x7/bn
                if head.startswith("inception") and rest.startswith(k + "."):
                    rest = v + rest[len(k) :]
                    break
            if not head.startswith("inception") and head in _GOOGLENET:
                head = _GOOGLENET[head]
            p = head + ("/" + rest if rest else "")
        elif family == "densenet":
            p = re.sub(r"^features\.", "", p)
            p = re.sub(r"^denseblock(\d+)\.denselayer(\d+)\.", r"denseblock\1_layer\2/", p)
            p = re.sub(r"^(transition\d+)\.", r"\1/", p)
        elif family == "mobilenet_v2":
            p = _mobilenet_path(p, jax_modules)
        elif family == "inception":
            p = _inception_path(p, torch_modules, jax_modules)
        out[m] = p.replace(".", "/")
    return out


def _mobilenet_path(p: str, jax_modules: list[str]) -> str:
    if p.startswith("classifier."):
        return "classifier"
    m = re.match(r"^features\.(\d+)\.(\d)$", p)  # the stem and the last 1x1: ConvBNReLU
    if m:
        return f"features_{m[1]}" + ("_bn" if m[2] == "1" else "")
    m = re.match(r"^features\.(\d+)\.conv\.(\d)(?:\.(\d))?$", p)
    block, i, j = m[1], int(m[2]), m[3]
    expands = f"features_{block}/expand" in jax_modules
    parts = (["expand"] if expands else []) + ["dw", "project"]
    if j is not None:  # conv.i.0 / conv.i.1: a ConvBNReLU
        return f"features_{block}/{parts[i]}" + ("_bn" if j == "1" else "")
    return f"features_{block}/project" + ("_bn" if i == len(parts) else "")  # conv.N (conv), conv.N+1 (bn)


def _inception_path(p: str, torch_modules: list[str], jax_modules: list[str]) -> str:
    head, _, rest = p.partition(".")
    if not head.startswith("Mixed_"):
        return p
    branch, _, leaf = rest.partition(".")  # "branch7x7_2", "conv" | "bn"
    torch_branches = list(dict.fromkeys(m.split(".")[1] for m in torch_modules if m.startswith(head + ".")))
    jax_branches = _numbered({m.split("/")[1] for m in jax_modules if m.startswith(head + "/")})
    return f"{head}/{jax_branches[torch_branches.index(branch)]}/{leaf}"


# ---- conversion ----


def _leaf(module_kind: str, torch_leaf: str) -> tuple[str, str] | None:
    table = {
        "weight": ("params", "scale" if module_kind == "bn" else "kernel"),
        "bias": ("params", "bias"),
        "running_mean": ("batch_stats", "mean"),
        "running_var": ("batch_stats", "var"),
    }
    return table.get(torch_leaf)


def _target_variables(model, input_size) -> dict:
    x = jax.ShapeDtypeStruct((1, *input_size), jnp.float32)
    return jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(0), x, train=False), x)


def convert_state_dict(name: str, state_dict: dict, model=None) -> dict:
    """A torchvision state dict (name -> numpy or torch array) as the variables of jaxcnn's `name`.

    Raises ValueError (one line) naming the first tensor whose shape does not fit, or a tensor the
    model lacks, or a variable the file lacks.
    """
    model = model or registry.create_model(name, cpu_kernels="off")
    family = _family(name)
    target = traverse_util.flatten_dict(_target_variables(model, registry.model_info(name).input_size))
    arrays = {k: np.asarray(v) for k, v in state_dict.items() if not k.endswith("num_batches_tracked")}
    torch_modules = list(dict.fromkeys(k.rsplit(".", 1)[0] for k in arrays))
    conv_modules = {k.rsplit(".", 1)[0] for k, v in arrays.items() if v.ndim == 4}
    jax_modules = list(dict.fromkeys("/".join(k[1:-1]) for k in target))
    paths = _module_paths(family, torch_modules, jax_modules, conv_modules)
    first_fc = "fc6" if family in ("alexnet", "vgg") else None
    out = {}
    for key, value in arrays.items():
        module, torch_leaf = key.rsplit(".", 1)
        jax_module = paths.get(module)
        kind = "bn" if value.ndim == 1 and f"{module}.running_mean" in arrays else "other"
        leaf = _leaf(kind, torch_leaf)
        if jax_module is None or leaf is None:
            raise ValueError(f"tensor {key!r} {value.shape} has no counterpart in jaxcnn's {name}")
        path = (leaf[0], *jax_module.split("/"), leaf[1])
        if path not in target:
            raise ValueError(f"tensor {key!r} {value.shape} maps to {'/'.join(path)}, which {name} lacks")
        if value.ndim == 4:
            value = value.transpose(2, 3, 1, 0)  # OIHW -> HWIO
        elif value.ndim == 2:
            out_features, in_features = value.shape
            if jax_module == first_fc:  # torch flattened C,H,W; jaxcnn flattens H,W,C
                channels = _last_conv_channels(target)
                if in_features % channels:
                    raise ValueError(
                        f"tensor {key!r} {value.shape}: {in_features} inputs is no multiple of {channels}"
                    )
                side = int(round((in_features // channels) ** 0.5))
                value = value.reshape(out_features, channels, side, side).transpose(0, 2, 3, 1)
                value = value.reshape(out_features, in_features)
            value = value.T
        expected = target[path].shape
        if value.shape != tuple(expected):
            raise ValueError(
                f"tensor {key!r} has shape {value.shape} after conversion, {name}'s {'/'.join(path)} needs "
                f"{tuple(expected)}"
            )
        out[path] = value.astype(np.float32)
    missing = [p for p in target if p not in out]
    if missing:
        raise ValueError(
            f"the file lacks {'/'.join(missing[0])} of {name} ({len(missing)} variables missing)"
        )
    return traverse_util.unflatten_dict({k: jnp.asarray(v) for k, v in out.items()})


def _last_conv_channels(target) -> int:
    convs = _numbered(
        "/".join(k[1:-1])
        for k in target
        if k[0] == "params" and k[-1] == "kernel" and len(target[k].shape) == 4
    )
    return target[("params", *convs[-1].split("/"), "kernel")].shape[-1]


def _read_state_dict(path: Path) -> dict:
    try:
        import torch
    except ImportError:
        raise ImportError(
            f"reading {path} needs torch (pip install torch); converted trees load without it"
        ) from None
    state = torch.load(path, map_location="cpu", weights_only=True)
    return {k: v.float().numpy() for k, v in state.items()}


def _model_for(name: str, state_dict_keys, **overrides):
    aux = {"googlenet_tv": "aux1.", "inception_v3": "AuxLogits."}.get(name)
    if aux and not any(k.startswith(aux) for k in state_dict_keys):
        overrides.setdefault("aux_logits", False)  # a file saved without the auxiliary heads
    return registry.create_model(name, **overrides)


def load_pretrained(name: str, tag: str | None = None, *, path: str | os.PathLike | None = None, **overrides):
    """`(model, variables)`: jaxcnn's `name` with published (or given) torchvision weights.

    Args:
      name: a jaxcnn model with a torchvision counterpart (`list_pretrained()`).
      tag: a row of the weights table (e.g. "IMAGENET1K_V2"); None: the model's latest row.
      path: a torchvision state-dict file (torch.save of `model.state_dict()`); without it the file
        is downloaded into ~/.cache/jaxcnn/weights (prefix of its SHA-256 checked).
      **overrides: passed to create_model (e.g. cpu_kernels="off", dtype, classifier_pool).

    Returns:
      The flax module and {"params", "batch_stats"} (the latter for BN nets). At the row's crop size
      the logits are torchvision's. At larger inputs alexnet/vgg/googlenet_tv/inception_v3 evaluate
      densely by default (the papers' protocol); pass classifier_pool="adaptive" (the row's
      `classifier_pool`) to pool adaptively as torchvision does and get its logits there too.
    """
    registry.model_info(name)  # unknown names fail here, with the allowed ones
    if path is None:
        file = _download(_find(name, tag))
    else:
        file = Path(path)
        if not file.is_file():
            raise FileNotFoundError(f"no weights file at {file}")
    digest = sha256_file(file)
    cached = CACHE_DIR / f"{name}-{digest[:16]}.npz"
    if cached.exists():
        with np.load(cached) as data:
            flat = {tuple(k.split("/")): jnp.asarray(data[k]) for k in data.files}
        keys = [k for k in flat if k[0] == "params"]
        aux_free = {"googlenet_tv": "aux1", "inception_v3": "AuxLogits"}.get(name)
        has_aux = aux_free is not None and any(k[1] == aux_free for k in keys)
        model = _model_for(name, [aux_free + "."] if has_aux else [], **overrides)
        return model, traverse_util.unflatten_dict(flat)
    state = _read_state_dict(file)
    model = _model_for(name, state.keys(), **overrides)
    variables = convert_state_dict(name, state, model=model)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    flat = traverse_util.flatten_dict(variables)
    tmp = cached.with_suffix(".tmp.npz")
    np.savez(tmp, **{"/".join(k): np.asarray(v) for k, v in flat.items()})
    tmp.rename(cached)
    return model, variables
