"""Geometry for the dashboards' server-rendered SVG charts: numbers in, rectangles and ticks out; then
each dashboard's charts from its figures (integrations.dashboard_cache), for its view to render.

Templates draw them with SVG attributes and CSS classes only (the CSP forbids inline style);
every chart is followed by a table with the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class Rect:
    x: float
    y: float
    width: float
    height: float
    css: str
    title: str


@dataclass
class Column:
    label: str
    x: float  # centre of the group
    rects: list[Rect] = field(default_factory=list)


@dataclass
class Tick:
    y: float
    label: str

    @property
    def label_y(self) -> float:
        return round(self.y - 5, 1)


@dataclass
class ColumnChart:
    width: int
    height: int
    plot_top: float
    plot_bottom: float
    plot_left: float
    plot_right: float
    columns: list[Column]
    ticks: list[Tick]
    legend: list[tuple[str, str]]
    reference: Tick | None = None
    label_every: int = 1

    @property
    def tick_x(self) -> float:
        return self.plot_left - 6

    @property
    def label_y(self) -> float:
        return self.plot_bottom + 18

    @property
    def empty(self) -> bool:
        return not any(r.height > 0 for c in self.columns for r in c.rects)


@dataclass
class Segment:
    x: float
    width: float
    css: str
    title: str


@dataclass
class HBar:
    label: str
    value_label: str
    y: float
    width: float
    css: str
    value_x: float = 0
    text_y: float = 0
    segments: list[Segment] = field(default_factory=list)


@dataclass
class BarList:
    width: int
    height: int
    label_width: float
    bar_left: float
    bar_height: float
    bars: list[HBar]
    track_width: float = 0


def nice_ceiling(value: float) -> float:
    """The next "round" number at or above value: 1, 2, 2.5, 5 times a power of ten."""
    if value <= 0:
        return 1
    exponent = math.floor(math.log10(value))
    base = 10**exponent
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * base + 1e-9:
            return step * base
    return 10 * base


def nice_axis(peak: float, *, integers: bool, most_steps: int = 5) -> tuple[float, int]:
    """A round step and how many of them reach `peak`: 0, 50, 100 ... 250 for 202, never 62.5."""
    if peak <= 0:
        return 1.0, 4 if not integers else 1
    exponent = math.floor(math.log10(peak / most_steps)) if peak / most_steps > 0 else 0
    for power in (exponent - 1, exponent, exponent + 1, exponent + 2):
        for multiple in (1, 2, 2.5, 5):
            step = multiple * 10**power
            if integers and step != int(step):
                continue
            if integers and step < 1:
                continue
            steps = math.ceil(peak / step - 1e-9)
            if steps <= most_steps:
                return float(step), max(steps, 1)
    return float(nice_ceiling(peak)), 1


def short_number(value: float, *, percent: bool = False) -> str:
    if percent:
        return f"{value:.0f}%"
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:.1f}M".replace(".0M", "M")
    if abs(value) >= 1_000:
        return f"{value / 1_000:.1f}k".replace(".0k", "k")
    return f"{value:.0f}" if value == int(value) else f"{value:.1f}"


def column_chart(
    labels: list[str],
    series: list[tuple[str, str, list[float]]],
    *,
    stacked: bool = False,
    percent: bool = False,
    reference: float | None = None,
    reference_label: str = "",
    width: int = 640,
    height: int = 240,
    value_format=None,
) -> ColumnChart:
    """Vertical columns, grouped side by side or stacked. series: (name, css class, values)."""
    left, right, top, bottom = 44.0, width - 8.0, 12.0, height - 30.0
    totals = [sum(values[i] for _, _, values in series) for i in range(len(labels))] if stacked else []
    peak = max(totals or [max(values or [0]) for _, _, values in series] or [0])
    if reference is not None:
        peak = max(peak, reference)
    integers = not percent and all(float(v) == int(v) for _, _, values in series for v in values if v is not None)
    step, steps = nice_axis(float(peak), integers=integers)
    ceiling = step * steps
    scale = (bottom - top) / ceiling
    fmt = value_format or (lambda v: short_number(v, percent=percent))
    slot = (right - left) / max(1, len(labels))
    group_width = slot * 0.7
    bar_width = group_width if stacked else group_width / max(1, len(series))
    columns = []
    for index, label in enumerate(labels):
        centre = left + slot * index + slot / 2
        column = Column(label=label, x=round(centre, 1))
        base = bottom
        for position, (name, css, values) in enumerate(series):
            value = float(values[index] or 0)
            bar_height = value * scale
            if stacked:
                x = centre - group_width / 2
                y = base - bar_height
                base = y
            else:
                x = centre - group_width / 2 + position * bar_width
                y = bottom - bar_height
            column.rects.append(
                Rect(
                    x=round(x, 1),
                    y=round(y, 1),
                    width=round(max(bar_width - 2, 1), 1),
                    height=round(bar_height, 1),
                    css=css,
                    title=f"{label} · {name}: {fmt(value)}",
                )
            )
        columns.append(column)
    ticks = [Tick(y=round(bottom - step * index * scale, 1), label=fmt(step * index)) for index in range(steps + 1)]
    chart = ColumnChart(
        width=width,
        height=height,
        plot_top=top,
        plot_bottom=bottom,
        plot_left=left,
        plot_right=right,
        columns=columns,
        ticks=ticks,
        legend=[(name, css) for name, css, _ in series],
        label_every=max(1, math.ceil(len(labels) / max(1, (right - left) // 56))),
    )
    if reference is not None:
        chart.reference = Tick(y=round(bottom - reference * scale, 1), label=reference_label or fmt(reference))
    return chart


# Horizontal bars: one a row, this tall.
ROW, BAR_HEIGHT = 32.0, 20.0


def _short_label(label: str) -> str:
    return label if len(label) <= 26 else label[:25] + "…"


def _bar_list(bars: list[HBar], *, width: int, label_width: int, value_room: float) -> BarList:
    bar_left = float(label_width)
    return BarList(
        width=width,
        height=int(len(bars) * ROW + 8),
        label_width=label_width - 8,
        bar_left=bar_left,
        bar_height=BAR_HEIGHT,
        bars=bars,
        track_width=round(width - bar_left - value_room, 1),
    )


def bar_list(
    items: list[tuple[str, float, str]],
    *,
    width: int = 520,
    label_width: int = 170,
    percent: bool = False,
    maximum: float | None = None,
    value_format=None,
) -> BarList:
    """Horizontal bars with their labels, largest scale first. items: (label, value, css class)."""
    bar_left = float(label_width)
    value_room = 64.0
    peak = maximum if maximum is not None else max([value for _, value, _ in items] or [0])
    scale = (width - bar_left - value_room) / (peak or 1)
    fmt = value_format or (lambda v: short_number(v, percent=percent))
    bars = []
    for index, (label, value, css) in enumerate(items):
        bar_width = round(max(float(value or 0) * scale, 0), 1)
        bars.append(
            HBar(
                label=_short_label(label),
                value_label=fmt(float(value or 0)),
                y=index * ROW + 6,
                width=bar_width,
                css=css,
                value_x=round(bar_left + bar_width + 6, 1),
                text_y=index * ROW + 6 + 14.5,
            )
        )
    return _bar_list(bars, width=width, label_width=label_width, value_room=value_room)


def stacked_bar_list(
    items: list[tuple[str, list[tuple[float, str, str]], str]],
    *,
    width: int = 520,
    label_width: int = 170,
) -> BarList:
    """Horizontal bars made of parts, e.g. revenue as cost + margin. items: (label, [(value, css, title)], text)."""
    bar_left = float(label_width)
    value_room = 96.0
    peak = max([sum(max(v, 0) for v, _, _ in parts) for _, parts, _ in items] or [0])
    scale = (width - bar_left - value_room) / (peak or 1)
    bars = []
    for index, (label, parts, text) in enumerate(items):
        x = bar_left
        segments = []
        for value, css, title in parts:
            part = round(max(float(value), 0) * scale, 1)
            segments.append(Segment(x=round(x, 1), width=part, css=css, title=title))
            x += part
        bars.append(
            HBar(
                label=_short_label(label),
                value_label=text,
                y=index * ROW + 6,
                width=round(x - bar_left, 1),
                css="",
                value_x=round(x + 6, 1),
                text_y=index * ROW + 6 + 14.5,
                segments=segments,
            )
        )
    return _bar_list(bars, width=width, label_width=label_width, value_room=value_room)


# --- Each dashboard's charts, from its figures ------------------------------------------------------


def exceptions_charts(data: dict) -> dict:
    """The exceptions dashboard: open ones by error and by system, by age against the SLA, the weekly trend."""
    severity = ["ok", "warn", "bad", "worst"]
    charts = {
        "by_error": bar_list([(row["label"], row["count"], "series-a") for row in data["by_error"][:10]]),
        "by_system": bar_list([(row["label"], row["count"], "series-b") for row in data["by_system"]]),
        "ages": column_chart(
            ["Under ½ SLA", "½ SLA to SLA", "1–2× SLA", "Over 2× SLA"],
            [("Open exceptions", "series-a", [row["count"] for row in data["ages"]])],
            width=520,
        ),
        "trend": column_chart(
            [row["week"].strftime("%-d %b") for row in data["trend"]],
            [
                ("Opened", "series-bad", [row["opened"] for row in data["trend"]]),
                ("Resolved", "series-ok", [row["resolved"] for row in data["trend"]]),
            ],
            width=520,
        ),
    }
    for column, state in zip(charts["ages"].columns, severity, strict=False):
        for rect in column.rects:
            rect.css = f"age-{state}"
    return charts


def utilization_charts(data: dict) -> dict:
    """The utilization dashboard: per week against the period's average, per practice against 100%."""
    return {
        "by_week": column_chart(
            [row["week"].strftime("%-d %b") for row in data["by_week"]],
            [("Utilization", "series-a", [row["utilization"] or 0 for row in data["by_week"]])],
            percent=True,
            reference=data["utilization"],
            reference_label=f"average {data['utilization'] or 0:.0f}%",
            width=520,
        ),
        "by_practice": bar_list(
            [(row["practice"], row["utilization"] or 0, "series-b") for row in data["by_practice"]],
            percent=True,
            maximum=max([100.0] + [row["utilization"] or 0 for row in data["by_practice"]]),
        ),
    }


def margin_charts(data: dict) -> dict:
    """The margin dashboard: the top customers' revenue as cost and margin, revenue and cost per month."""
    short = lambda value: f"{value / 1000:,.0f}k" if abs(value) >= 10_000 else f"{value:,.0f}"  # noqa: E731
    return {
        "by_customer": stacked_bar_list(
            [
                (
                    row["customer"],
                    [
                        (float(row["cost"]), "series-c", f"cost {short(float(row['cost']))}"),
                        (float(max(row["margin"], 0)), "series-a", f"margin {short(float(row['margin']))}"),
                    ],
                    f"{short(float(row['revenue']))} · {row['margin_percent'] or 0:.0f}%",
                )
                for row in data["by_customer"][:8]
            ]
        ),
        "by_month": column_chart(
            [row["month"].strftime("%b %Y") for row in data["by_month"]],
            [
                ("Revenue", "series-a", [float(row["revenue"]) for row in data["by_month"]]),
                ("Cost", "series-c", [float(row["cost"]) for row in data["by_month"]]),
            ],
            value_format=short,
            width=520,
        ),
    }


def sync_charts(data: dict) -> dict:
    """The sync health dashboard: runs per day by outcome, records per second per flow."""
    busy = sorted((row for row in data["flows"] if row["records_per_second"]), key=lambda r: -r["records_per_second"])
    return {
        "by_day": column_chart(
            [row["day"].strftime("%-d %b") for row in data["by_day"]],
            [
                ("Succeeded", "series-ok", [row["succeeded"] for row in data["by_day"]]),
                ("With exceptions", "series-warn", [row["partial"] for row in data["by_day"]]),
                ("Failed", "series-bad", [row["failed"] for row in data["by_day"]]),
            ],
            stacked=True,
            width=520,
        ),
        "throughput": bar_list(
            [(row["flow"].name, row["records_per_second"], "series-a") for row in busy],
            value_format=lambda v: f"{v:,.1f}/s",
            label_width=200,
        ),
    }
