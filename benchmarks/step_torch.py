"""torchvision models on PyTorch in channels_last: the eager loop users write, or its torch.compile.

On a CUDA device when one is visible, else on the CPU with every core. In bfloat16 the forward and
loss run under torch.autocast (the parameters and SGD state stay float32), as PyTorch's mixed
precision recipe does; jaxcnn's bfloat16 likewise keeps float32 parameters.
"""

from __future__ import annotations

import contextlib
import os

import torch
import torchvision

from benchmarks.step_common import LEARNING_RATE, TrainStep, check_precision, synthetic_batch

# Networks with auxiliary classifiers in training, built with them as jaxcnn's are.
AUX = {"googlenet", "inception_v3"}
AUX_WEIGHT = 0.3  # jaxcnn's config.loss.aux_weight


def build(
    network: str, batch_size: int, image_size: int = 0, precision: str = "float32", compiled: bool = False
) -> TrainStep:
    """torchvision.models.<network> (random init); SGD (LEARNING_RATE, momentum 0.9, decay 1e-4).

    image_size: side of the square input; 0 = the native resolution (299 for Inception v3, else 224).
    precision: "float32", or "bfloat16" under torch.autocast.
    compiled: the model wrapped in torch.compile (default inductor backend); the optimizer step
      stays eager, as in PyTorch's own torch.compile tutorial.
    """
    check_precision(precision)
    if network not in torchvision.models.list_models(module=torchvision.models):
        raise ValueError(f"unknown torchvision classification model {network!r}")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu":
        torch.set_num_threads(os.cpu_count())  # every core, as JAX uses
    kwargs = {"aux_logits": True, "init_weights": True} if network in AUX else {}
    model = torchvision.models.get_model(network, weights=None, **kwargs)
    model = model.to(device=device, memory_format=torch.channels_last).train()
    num_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    size = image_size or (299 if network == "inception_v3" else 224)
    input_shape = (size, size, 3)
    images, labels = synthetic_batch(batch_size, input_shape, 1000)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last).to(device)
    y = torch.from_numpy(labels).long().to(device)
    opt = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=0.9, weight_decay=1e-4)
    forward = torch.compile(model) if compiled else model
    criterion = torch.nn.CrossEntropyLoss()
    autocast = (
        (lambda: torch.autocast(device.type, dtype=torch.bfloat16))
        if precision == "bfloat16"
        else contextlib.nullcontext
    )
    holder = {"loss": None}

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with autocast():
            out = forward(x)
            if network in AUX:
                aux = sum(criterion(a, y) for a in out[1:] if a is not None)
                loss = criterion(out[0], y) + AUX_WEIGHT * aux
            else:
                loss = criterion(out, y)
        loss.backward()
        opt.step()
        holder["loss"] = loss.detach()

    def sync() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return float(holder["loss"].float().item())

    return TrainStep(step=step, sync=sync, num_params=num_params, input_shape=input_shape)
