"""Inside a trial: the live progress line, per-epoch lines, and the model's size and latency.

`dlimaging.tuning.tuner` adds these Keras callbacks to every trial it runs.
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from typing import Any, Callable

import keras


def measure_latency(model, calls: int = 10, warmup: int = 2) -> float | None:
    """The median time, in milliseconds, of one inference on a batch of one sample.

    The model runs as it is served: inside one `tf.function` (`model(x, training=False)`,
    traced by the first warm-up call), on one zero-filled sample, with the result copied
    to host memory. The median of `calls` timed calls is returned, after `warmup` untimed
    ones. It includes TensorFlow's dispatch overhead (tenths of a millisecond on a CPU),
    so compare latencies measured on one machine.

    Args:
        model: a built `keras.Model` with one input of fixed shape.
        calls: int. Timed calls. Defaults to 10.
        warmup: int. Untimed calls before them. Defaults to 2.

    Returns:
        The median in milliseconds, or None for a model whose input shape is not fixed.
    """
    import tensorflow as tf

    inputs = getattr(model, "inputs", None) or []
    shape = tuple(inputs[0].shape[1:]) if len(inputs) == 1 else None
    if shape is None or any(size is None for size in shape):
        return None
    x = tf.zeros((1, *shape), dtype=inputs[0].dtype)
    forward = tf.function(lambda batch: model(batch, training=False))
    for _ in range(max(1, warmup)):
        keras.tree.map_structure(lambda t: t.numpy(), forward(x))
    times = []
    for _ in range(max(1, calls)):
        start = time.perf_counter()
        keras.tree.map_structure(lambda t: t.numpy(), forward(x))  # waits for the result
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000.0


class _Shared:
    """Keras Tuner deep-copies a search's callbacks for each execution of a trial; these
    callbacks report to the tuner, so the copy is the callback itself."""

    def __deepcopy__(self, memo):
        return self


class MeasureModel(_Shared, keras.callbacks.Callback):
    """Records the trained model's size and speed into `sink` when its training ends.

    `sink["params"]` is `model.count_params()` (trainable and not); `sink["latency_ms"]`
    is `measure_latency(model)`. With several executions per trial the model is rebuilt
    each time; the last one's measures are kept (they are the same architecture).
    """

    def __init__(self, sink: dict[str, Any]):
        super().__init__()
        self.sink = sink

    def on_train_end(self, logs=None):
        self.sink["params"] = int(self.model.count_params())
        try:
            self.sink["latency_ms"] = measure_latency(self.model)
        except Exception:  # noqa: BLE001  a measure never fails a trial that trained
            self.sink["latency_ms"] = None


def _duration(seconds: float) -> str:
    """0.4s, 12s, 3m05s, 1h02m."""
    if seconds < 9.95:
        return f"{max(0.0, seconds):.1f}s"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class ProgressDisplay:
    """Where the progress inside trials goes.

    On a terminal, one line redrawn in place (rich's `Live`, transient: it disappears
    when the trial ends, and the trial's summary line is printed instead). With
    `verbose`, also one plain line per epoch through `printer`, for log files and CI.

    Args:
        printer: where plain lines go. Defaults to `print`.
        live: bool, a `rich.console.Console`, or None. Show the live line: None shows
            it when standard output is a terminal (`sys.stdout.isatty()`); a Console
            draws on that console (tests pass one writing to a string). Defaults to None.
        verbose: bool. Print one plain line per epoch. Defaults to False.
        refresh_seconds: float. The live line is redrawn at most this often within an
            epoch. Defaults to 0.2.
    """

    def __init__(self, printer: Callable[[str], None] = print, *, live=None, verbose: bool = False,
                 refresh_seconds: float = 0.2):
        from rich.console import Console

        if live is None:
            live = sys.stdout.isatty()
        self.console = live if isinstance(live, Console) else (Console() if live else None)
        self.printer = printer
        self.verbose = bool(verbose)
        self.refresh_seconds = refresh_seconds
        self._live = None
        self._drawn = 0.0

    @property
    def live(self) -> bool:
        return self.console is not None

    def show(self, text: str, force: bool = False) -> None:
        """Redraws the live line with `text` (at most every `refresh_seconds`, unless `force`)."""
        if self.console is None:
            return
        now = time.monotonic()
        if not force and now - self._drawn < self.refresh_seconds:
            return
        from rich.live import Live
        from rich.text import Text

        if self._live is None:
            self._live = Live(console=self.console, auto_refresh=False, transient=True)
            self._live.start()
        self._live.update(Text(text, no_wrap=True, overflow="ellipsis"), refresh=True)
        self._drawn = now

    def line(self, text: str) -> None:
        """A plain line, printed only when `verbose`."""
        if self.verbose:
            self.printer(text)

    def close(self) -> None:
        """Removes the live line, if one is shown."""
        if self._live is not None:
            live, self._live = self._live, None
            live.stop()


class TrialProgress(_Shared, keras.callbacks.Callback):
    """Progress inside one trial: trial k/N, epoch e/E, loss, the objective so far and the time left.

    Fed by `on_train_batch_end` (the live line, redrawn within an epoch) and
    `on_epoch_end` (the objective, and a plain line when verbose). The time left in the
    trial is the mean epoch time so far times the epochs left (early stopping may end
    it sooner); `search_left(trial_seconds_left)`, when given, estimates the time left
    in the whole search.

    Args:
        display: a `ProgressDisplay`.
        label: str. The trial, e.g. "trial 3/8".
        objective: str. The objective's name, e.g. "val_accuracy".
        direction: "max" or "min".
        search_left: callable or None. Seconds left in the search, given the seconds
            left in this trial; None when unknown. Defaults to None.
    """

    def __init__(self, display: ProgressDisplay, *, label: str, objective: str, direction: str,
                 search_left: Callable[[float], float | None] | None = None):
        super().__init__()
        self.display = display
        self.label = label
        self.objective = objective
        self.direction = direction
        self.search_left = search_left
        self.best: float | None = None

    def on_train_begin(self, logs=None):
        self._epochs = (self.params or {}).get("epochs")
        self._steps = (self.params or {}).get("steps")
        self._epoch_seconds: list[float] = []
        self._epoch = 0
        self._epoch_started = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._epoch_started = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if self.display.live:
            self.display.show(f"{self.label} | " + " | ".join(self._parts(logs, batch=batch + 1)))

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self._epoch_seconds.append(time.perf_counter() - self._epoch_started)
        value = logs.get(self.objective)
        if value is not None and math.isfinite(float(value)):
            value = float(value)
            if self.best is None or (value > self.best if self.direction == "max" else value < self.best):
                self.best = value
        self._epoch = epoch + 1  # this epoch is done
        self.display.show(f"{self.label} | " + " | ".join(self._parts(logs)), force=True)
        if self.display.verbose:
            epoch_text, *rest = self._parts(logs)
            self.display.line(f"[{self.label}] {epoch_text} in {_duration(self._epoch_seconds[-1])}: " + " ".join(rest))

    def on_train_end(self, logs=None):
        self.display.close()

    def _seconds_left(self, batch: int | None) -> float | None:
        """The mean epoch time so far times the epochs left, less what this epoch has done."""
        if not self._epochs:
            return None
        if self._epoch_seconds:
            per_epoch = statistics.fmean(self._epoch_seconds)
        elif batch and self._steps:
            per_epoch = (time.perf_counter() - self._epoch_started) * self._steps / batch
        else:
            return None
        left = per_epoch * (self._epochs - self._epoch)
        if batch and self._steps:
            left -= min(per_epoch, time.perf_counter() - self._epoch_started)
        return max(0.0, left)

    def _parts(self, logs, batch: int | None = None) -> list[str]:
        """epoch e/E, (batch b/B,) loss, the objective and its best so far, the time left."""
        logs = logs or {}
        epoch = self._epoch + 1 if batch else self._epoch  # within an epoch: the one running
        total = f"/{self._epochs}" if self._epochs else ""
        parts = [f"epoch {epoch}{total}"]
        if batch and self._steps:
            parts.append(f"batch {batch}/{self._steps}")
        loss = logs.get("loss")
        if loss is not None:
            parts.append(f"loss={float(loss):.4f}")
        if self.objective != "loss":
            value = logs.get(self.objective) if not batch else None
            if value is not None:
                parts.append(f"{self.objective}={float(value):.4f}")
            parts.append(f"best {self.objective}=" + (f"{self.best:.4f}" if self.best is not None else "-"))
        elif self.best is not None:
            parts.append(f"best loss={self.best:.4f}")
        left = self._seconds_left(batch)
        if left is not None and (batch or self._epoch < (self._epochs or 0)):
            more = self.search_left(left) if self.search_left else None
            parts.append(f"~{_duration(left)} left" + (f" (search ~{_duration(more)})" if more else ""))
        return parts
