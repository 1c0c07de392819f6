"""Plotly figures for the dashboards, built server-side and rendered by our plotly.js."""

import plotly.graph_objects as go

from reports.selectors import WeeklyCategoryCounts

# One colour per stage category, kept stable across charts.
CATEGORY_COLOURS = {
    "sourcing": "#6c8ebf",
    "screening": "#d79b00",
    "interviewing": "#82b366",
    "offer": "#b85450",
    "onboarding": "#9673a6",
}


def weekly_failures_figure(counts: WeeklyCategoryCounts) -> go.Figure:
    """Stacked bars: failures per stage category per week, hover shows the denominator."""
    figure = go.Figure()
    x = [week.isoformat() for week in counts.weeks]
    for category, label in counts.categories:
        entered = counts.entered[category]
        figure.add_trace(
            go.Bar(
                name=label,
                x=x,
                y=counts.failures[category],
                customdata=entered,
                marker_color=CATEGORY_COLOURS.get(category),
                hovertemplate=(
                    f"<b>{label}</b><br>week of %{{x}}<br>%{{y}} failures"
                    "<br>%{customdata} applications entered the stage<extra></extra>"
                ),
            )
        )
    tallest = max(
        (sum(values) for values in zip(*counts.failures.values(), strict=True)), default=0
    )
    yaxis = {"title": "Failures", "rangemode": "tozero", "tickformat": ",d"}
    if tallest < 10:
        yaxis["dtick"] = 1  # whole failures only: no 0.5 ticks on a quiet chart
    figure.update_layout(
        barmode="stack",
        xaxis={"title": "Week starting", "type": "category"},
        yaxis=yaxis,
        legend={"orientation": "h", "y": -0.25, "traceorder": "normal"},
        margin={"l": 60, "r": 20, "t": 20, "b": 80},
        height=420,
        template="plotly_white",
    )
    return figure
