"""A small Prometheus registry: counters, gauges and histograms in the text format.

``prometheus_client`` is not a dependency of the platform, and the endpoint needs little
of it: a few labelled series, updated on the request path (one dict update per counter,
one bisect per histogram) and rendered in the text exposition format (version 0.0.4) by
``GET /metrics``. Updates happen on the event loop thread; the shadow and capture threads
only feed values read through callbacks at render time, so no lock sits on the request path.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable, Sequence

#: Content type of the text exposition format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: Request latency buckets (seconds): fine below 50 ms, where a healthy endpoint lives.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.03,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)

Labels = tuple[str, ...]


class Metric:
    """Base of a named metric family with fixed label names."""

    kind = "untyped"

    def __init__(self, name: str, help_text: str, label_names: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help_text
        self.label_names = tuple(label_names)

    def samples(self) -> Iterable[tuple[str, Labels, float]]:
        """``(suffix, label values, value)`` for every series (override)."""
        return ()

    def render(self) -> list[str]:
        """The family's lines in the text format."""
        lines = [f"# HELP {self.name} {_escape_help(self.help)}", f"# TYPE {self.name} {self.kind}"]
        for suffix, labels, value in self.samples():
            lines.append(f"{self.name}{suffix}{self._labels(labels)} {_number(value)}")
        return lines

    def _labels(self, values: Labels, extra: tuple[tuple[str, str], ...] = ()) -> str:
        pairs = [*zip(self.label_names, values, strict=False), *extra]
        if not pairs:
            return ""
        return "{" + ",".join(f'{k}="{_escape_label(v)}"' for k, v in pairs) + "}"


class Counter(Metric):
    """A monotonically increasing count per label combination."""

    kind = "counter"

    def __init__(self, name: str, help_text: str, label_names: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, label_names)
        self.values: dict[Labels, float] = {}

    def inc(self, labels: Labels = (), amount: float = 1.0) -> None:
        """Add ``amount`` to the series of ``labels`` (values in label-name order)."""
        values = self.values
        values[labels] = values.get(labels, 0.0) + amount

    def value(self, labels: Labels = ()) -> float:
        """The current count of a series (0 when never incremented)."""
        return self.values.get(labels, 0.0)

    def samples(self) -> Iterable[tuple[str, Labels, float]]:
        return [("", labels, value) for labels, value in sorted(list(self.values.items()))]


class Gauge(Metric):
    """A value per label combination, set directly or read from a callback at render time."""

    kind = "gauge"

    def __init__(
        self,
        name: str,
        help_text: str,
        label_names: Sequence[str] = (),
        callback: Callable[[], dict[Labels, float]] | None = None,
    ) -> None:
        super().__init__(name, help_text, label_names)
        self.values: dict[Labels, float] = {}
        self.callback = callback

    def set(self, labels: Labels, value: float) -> None:
        """Set the series of ``labels``."""
        self.values[labels] = value

    def replace(self, values: dict[Labels, float]) -> None:
        """Replace every series at once (series not given disappear)."""
        self.values = dict(values)

    def samples(self) -> Iterable[tuple[str, Labels, float]]:
        values = self.callback() if self.callback is not None else self.values
        return [("", labels, value) for labels, value in sorted(list(values.items()))]


class CallbackCounter(Gauge):
    """A counter whose values another component keeps (read at render time)."""

    kind = "counter"


class Histogram(Metric):
    """Observations counted into fixed buckets, plus their sum and count, per labels."""

    kind = "histogram"

    def __init__(
        self,
        name: str,
        help_text: str,
        label_names: Sequence[str] = (),
        buckets: Sequence[float] = LATENCY_BUCKETS,
    ) -> None:
        super().__init__(name, help_text, label_names)
        self.buckets = tuple(sorted(buckets))
        # labels → [count per bucket (+Inf last), sum]
        self.series: dict[Labels, list[float]] = {}

    def observe(self, labels: Labels, value: float) -> None:
        """Record one observation."""
        series = self.series.get(labels)
        if series is None:
            series = self.series[labels] = [0.0] * (len(self.buckets) + 2)
        series[bisect.bisect_left(self.buckets, value)] += 1
        series[-1] += value

    def count(self, labels: Labels) -> int:
        """Number of observations of a series."""
        series = self.series.get(labels)
        return int(sum(series[:-1])) if series else 0

    def samples(self) -> Iterable[tuple[str, Labels, float]]:
        return ()

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {_escape_help(self.help)}", f"# TYPE {self.name} {self.kind}"]
        for labels, series in sorted(list(self.series.items())):
            series = list(series)
            cumulative = 0.0
            for bound, count in zip((*self.buckets, math.inf), series[:-1], strict=True):
                cumulative += count
                le = "+Inf" if bound == math.inf else _number(bound)
                lines.append(
                    f"{self.name}_bucket{self._labels(labels, (('le', le),))} {_number(cumulative)}"
                )
            lines.append(f"{self.name}_sum{self._labels(labels)} {_number(series[-1])}")
            lines.append(f"{self.name}_count{self._labels(labels)} {_number(cumulative)}")
        return lines


class MetricsRegistry:
    """Metric families rendered together, in registration order."""

    def __init__(self) -> None:
        self.metrics: list[Metric] = []

    def add(self, metric: Metric) -> Metric:
        """Register a family (names must be unique)."""
        if any(m.name == metric.name for m in self.metrics):
            raise ValueError(f"metric {metric.name!r} is registered twice")
        self.metrics.append(metric)
        return metric

    def render(self) -> str:
        """Every family in the text exposition format."""
        lines: list[str] = []
        for metric in self.metrics:
            lines.extend(metric.render())
        return "\n".join(lines) + "\n"


def parse_text(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Parse the text format back into ``{(name, labels): value}`` (tests, deploy checks).

    Args:
        text: What ``/metrics`` returned.

    Returns:
        One entry per sample line; comment lines are skipped.
    """
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        name, brace, rest = head.partition("{")
        labels: list[tuple[str, str]] = []
        if brace:
            body = rest.rsplit("}", 1)[0]
            i = 0
            while i < len(body):
                eq = body.index("=", i)
                key = body[i:eq].strip().lstrip(",")
                j = eq + 2  # skip ="
                chars: list[str] = []
                while body[j] != '"':
                    if body[j] == "\\":
                        j += 1
                        chars.append({"n": "\n"}.get(body[j], body[j]))
                    else:
                        chars.append(body[j])
                    j += 1
                labels.append((key, "".join(chars)))
                i = j + 1
        samples[(name, frozenset(labels))] = float(value)
    return samples


def _number(value: float) -> str:
    if value == math.inf:
        return "+Inf"
    if value == -math.inf:
        return "-Inf"
    if math.isnan(value):
        return "NaN"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _escape_label(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n")
