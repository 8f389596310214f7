"""The one door to a rollout engine, for every caller (training, eval, generate, distillation).

`open_engine(spec, model)` opens any engine of the registry (`rollout.engines`) in this process
or as a pool of Ray actors each owning one; `check_engine(spec)` fails before anything loads,
naming the recipe field at fault.
"""

from __future__ import annotations

import importlib.util

from rollout.engines import (
    ENGINES,
    EngineSpec,
    ModelSource,
    RolloutSetupError,
    open_in_process,
    unknown_engine,
)
from rollout.types import Engine


def open_engine(spec: EngineSpec, model: ModelSource, seed: int = 0) -> Engine:
    """An engine of `spec.kind` over `model`: in this process when `spec.workers` is 0, else a
    `RayPool` of `spec.workers` actors, each opening one from `model.directory`. `seed` is the
    engine's own, where it keeps one (vLLM); every call is seeded by its SamplingParams."""
    if spec.workers == 0:
        return open_in_process(spec.kind, model, seed, spec.options)
    from rollout.ray_pool import RayPool

    return RayPool(spec, model.needs_directory(spec.kind), seed)


def check_engine(spec: EngineSpec, section: str = "rollout") -> None:
    """Raise RolloutSetupError, naming `section`'s field, when the engine is unknown or not
    installed, Ray is unreachable, or the workers need more CPUs/GPUs than Ray sees. Connects
    to (or starts) Ray when workers > 0."""
    if spec.kind not in ENGINES:
        raise RolloutSetupError(unknown_engine(spec.kind, section))
    kind = ENGINES[spec.kind]
    if kind.package is not None and importlib.util.find_spec(kind.package) is None:
        raise RolloutSetupError(
            f"{section}.engine: {kind.package} is not installed ({kind.install})"
        )
    if spec.workers < 0:
        raise RolloutSetupError(
            f"{section}.workers must be 0 (in-process) or more, got {spec.workers}"
        )
    if spec.workers == 0:
        return
    from rollout.ray_pool import PoolError, connect

    place = spec.placement
    try:
        resources = connect(place.address)
    except PoolError as err:
        raise RolloutSetupError(str(err)) from None
    for name, per_worker, key in (
        ("cpus_per_worker", place.cpus_per_worker, "CPU"),
        ("gpus_per_worker", place.gpus_per_worker, "GPU"),
    ):
        available = resources.get(key, 0.0)
        if spec.workers * per_worker > available:
            raise RolloutSetupError(
                f"{section}.workers: {spec.workers} workers x ray.{name} {per_worker} need "
                f"{spec.workers * per_worker:g} {key}s; Ray at {place.address!r} has "
                f"{available:g}"
            )
