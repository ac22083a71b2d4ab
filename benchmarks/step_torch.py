"""torchvision models on PyTorch's CPU backend in channels_last, the eager loop users write."""

from __future__ import annotations

import os

import torch
import torchvision

from benchmarks.step_common import LEARNING_RATE, TrainStep, synthetic_batch

# Networks with auxiliary classifiers in training, built with them as jaxcnn's are.
AUX = {"googlenet", "inception_v3"}
AUX_WEIGHT = 0.3  # jaxcnn's config.loss.aux_weight


def build(network: str, batch_size: int, image_size: int = 0) -> TrainStep:
    """torchvision.models.<network> (random init); SGD (LEARNING_RATE, momentum 0.9, decay 1e-4).

    image_size: side of the square input; 0 = the native resolution (299 for Inception v3, else 224).
    Uses every core (torch.set_num_threads(os.cpu_count())), as JAX does.
    """
    if network not in torchvision.models.list_models(module=torchvision.models):
        raise ValueError(f"unknown torchvision classification model {network!r}")
    torch.set_num_threads(os.cpu_count())
    kwargs = {"aux_logits": True, "init_weights": True} if network in AUX else {}
    model = torchvision.models.get_model(network, weights=None, **kwargs)
    model = model.to(memory_format=torch.channels_last).train()
    size = image_size or (299 if network == "inception_v3" else 224)
    input_shape = (size, size, 3)
    images, labels = synthetic_batch(batch_size, input_shape, 1000)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
    y = torch.from_numpy(labels).long()
    opt = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=0.9, weight_decay=1e-4)
    criterion = torch.nn.CrossEntropyLoss()

    def run() -> float:
        opt.zero_grad(set_to_none=True)
        out = model(x)
        if network in AUX:
            loss = criterion(out[0], y) + AUX_WEIGHT * sum(criterion(a, y) for a in out[1:] if a is not None)
        else:
            loss = criterion(out, y)
        loss.backward()
        opt.step()
        return loss.item()

    num_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return TrainStep(run=run, num_params=num_params, input_shape=input_shape)
