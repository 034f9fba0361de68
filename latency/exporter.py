"""ONNX export of parts and whole networks, optionally in a worker process that runs ahead.

Export (torch tracing) costs more than timing a part, so on a machine with two cores or more the
builder exports in a second process pinned to one core while the main process times on another;
a bounded queue keeps the exporter a few models ahead and the disk use small. Everything is built
by ``repghost`` (``build_part`` / ``build``) and written by ``repghost.export_onnx``.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from repghost import NetConfig, PartSpec

AHEAD = 4


@dataclass(frozen=True)
class ExportTask:
    """A part (``spec``) or a whole network (``config`` at ``resolution``) to export under ``key``."""

    key: str
    spec: PartSpec | None = None
    config: NetConfig | None = None
    resolution: int = 224


@dataclass(frozen=True)
class Exported:
    key: str
    onnx_path: str
    input_shape: tuple[int, ...]
    weight_bytes: int


def export_task(task: ExportTask, folder: str | Path, opset: int, index: int) -> Exported:
    """Build the deploy form of ``task`` with repghost and export it to ``folder``."""
    import repghost

    if task.spec is not None:
        module = repghost.build_part(task.spec, deploy=True)
        shape = tuple(task.spec.input_shape())
    elif task.config is not None:
        module = repghost.build(task.config, deploy=True)
        shape = (1, task.config.in_chans, task.resolution, task.resolution)
    else:
        raise ValueError(f"export task {task.key} has neither a part nor a network")
    module.eval()
    path = Path(folder) / f"{index:06d}.onnx"
    repghost.export_onnx(module, path, input_shape=shape, opset=opset)
    weight_bytes = sum(p.numel() * p.element_size() for p in module.parameters())
    return Exported(task.key, str(path), shape, int(weight_bytes))


def _pin(cpu: int | None) -> None:
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        try:
            os.sched_setaffinity(0, {cpu})
        except OSError:
            pass


def _worker(tasks: list[ExportTask], folder: str, opset: int, results: "multiprocessing.Queue", cpu: int | None) -> None:
    _pin(cpu)
    import torch

    torch.set_num_threads(1)
    for index, task in enumerate(tasks):
        try:
            message = ("ok", export_task(task, folder, opset, index))
        except Exception as error:  # reported to the parent, which raises it
            _put(results, ("error", task.key, f"{type(error).__name__}: {error}"))
            return
        if not _put(results, message):
            return
    _put(results, ("done", None))


def _put(results: "multiprocessing.Queue", message: tuple) -> bool:
    """Put ``message`` once there is room; False if the parent died meanwhile (a killed build
    must not leave its exporter behind)."""
    parent = multiprocessing.parent_process()
    while True:
        try:
            results.put(message, timeout=1.0)
            return True
        except queue.Full:
            if parent is not None and not parent.is_alive():
                return False


def worker_cpus() -> tuple[int, set[int]] | None:
    """(exporter's core, timer's cores) when this process may use two cores or more."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    return cpus[0], set(cpus[1:])


def export_stream(tasks: Iterable[ExportTask], folder: str | Path, *, opset: int, worker: bool) -> Iterator[Exported]:
    """Export ``tasks`` in order into ``folder`` and yield each as it is ready.

    With ``worker`` the export runs in a separate process pinned to one core (the caller is
    pinned to the others while the stream is open); otherwise inline, one at a time. The caller
    may delete each file once it has used it.
    """
    tasks = list(tasks)
    if not tasks:
        return
    cpus = worker_cpus() if worker else None
    if not worker:
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            for index, task in enumerate(tasks):
                yield export_task(task, folder, opset, index)
        finally:
            torch.set_num_threads(threads)
        return
    context = multiprocessing.get_context("spawn")
    results = context.Queue(maxsize=AHEAD)
    process = context.Process(
        target=_worker, args=(tasks, str(folder), opset, results, cpus[0] if cpus else None), daemon=True
    )
    previous = os.sched_getaffinity(0) if cpus else None
    process.start()
    if cpus:
        _pin_set(cpus[1])
    try:
        while True:
            try:
                message = results.get(timeout=5.0)
            except queue.Empty:
                if not process.is_alive():
                    raise RuntimeError(f"the export worker died (exit code {process.exitcode})") from None
                continue
            if message[0] == "done":
                break
            if message[0] == "error":
                raise RuntimeError(f"exporting {message[1]} failed: {message[2]}")
            yield message[1]
    finally:
        if process.is_alive():
            process.terminate()
        process.join(timeout=10)
        if previous is not None:
            _pin_set(previous)


def _pin_set(cpus: set[int]) -> None:
    try:
        os.sched_setaffinity(0, cpus)
    except OSError:
        pass
