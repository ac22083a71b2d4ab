"""Keras 3 applications on the JAX backend, trained by Keras' own jitted, donated train function.

`model.train_on_batch` runs the step `model.fit` runs (keras/src/backend/jax/trainer.py: jax.jit of
train_step with the state donated); the batch is passed as device arrays so no host copy is timed.
"""

from __future__ import annotations

import os

os.environ["KERAS_BACKEND"] = "jax"  # before keras is imported

import jax.numpy as jnp  # noqa: E402
import keras  # noqa: E402

from benchmarks.step_common import LEARNING_RATE, TrainStep, check_precision, synthetic_batch  # noqa: E402

# (height, width, channels) and classes of each application at its native resolution.
NATIVE = {
    "VGG16": (224, 224, 3),
    "InceptionV3": (299, 299, 3),
    "ResNet50": (224, 224, 3),
    "DenseNet121": (224, 224, 3),
    "MobileNetV2": (224, 224, 3),
}


def build(network: str, batch_size: int, image_size: int = 0, precision: str = "float32") -> TrainStep:
    """keras.applications.<network> (random init, logits out); SGD as the other peers (step_common).

    image_size: side of the square input; 0 = the application's native resolution.
    precision: "float32", or "bfloat16" as Keras' "mixed_bfloat16" policy (float32 variables).
    train_on_batch returns Python numbers, so Keras waits for every step in either mode.
    """
    check_precision(precision)
    if network not in NATIVE:
        raise ValueError(f"unknown Keras application {network!r}; known: {', '.join(NATIVE)}")
    if keras.backend.backend() != "jax":
        raise RuntimeError(f"Keras runs on {keras.backend.backend()!r}; KERAS_BACKEND=jax is required")
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if precision == "bfloat16" else "float32")
    native, classes = NATIVE[network], 1000
    input_shape = (image_size, image_size, 3) if image_size else native
    model = getattr(keras.applications, network)(
        weights=None, input_shape=input_shape, classes=classes, classifier_activation=None
    )
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=LEARNING_RATE, momentum=0.9, weight_decay=1e-4),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=True,
    )
    images, labels = synthetic_batch(batch_size, input_shape, classes)
    x, y = jnp.asarray(images), jnp.asarray(labels)
    holder = {"loss": None}

    def step() -> None:
        holder["loss"] = float(model.train_on_batch(x, y))  # pythonified logs: the step has finished

    def sync() -> float:
        return holder["loss"]

    return TrainStep(step=step, sync=sync, num_params=int(model.count_params()), input_shape=input_shape)
