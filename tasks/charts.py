"""Server-side SVG geometry for the statistics result in the admin (no chart library, no CDN)."""

from __future__ import annotations

from django.template.loader import render_to_string

CELL = 34
LABEL_SPACE = 110
HIST_WIDTH, HIST_HEIGHT = 180, 80


def _colour(r: float | None) -> str:
    """Blue for negative, red for positive correlation, white at 0, grey when undefined."""
    if r is None:
        return "#dddddd"
    strength = int(255 * (1 - min(1.0, abs(r))))
    return f"rgb(255,{strength},{strength})" if r >= 0 else f"rgb({strength},{strength},255)"


def heatmap(correlation: dict) -> dict:
    names = correlation["indicators"]
    cells = []
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            r = correlation["matrix"][i][j]
            x, y = LABEL_SPACE + j * CELL, i * CELL
            cells.append(
                {
                    "x": x,
                    "y": y,
                    "tx": x + CELL / 2,
                    "ty": y + CELL / 2 + 3,
                    "a": a,
                    "b": b,
                    "fill": _colour(r),
                    "label": "—" if r is None else f"{r:.2f}",
                }
            )
    # Row i's label sits left of the row, level with its cells.
    labels = [{"name": n, "x": LABEL_SPACE - 4, "y": i * CELL + CELL / 2 + 3} for i, n in enumerate(names)]
    return {
        "cells": cells,
        "labels": labels,
        "cell": CELL,
        "width": LABEL_SPACE + CELL * len(names) + 4,
        "height": CELL * len(names) + 4,
    }


def histograms(distribution: dict, order: list[str]) -> list[dict]:
    out = []
    for name in order:
        h = distribution.get(name)
        if not h or not h["counts"]:
            continue
        peak = max(h["counts"]) or 1
        width = HIST_WIDTH / len(h["counts"])
        bars = [
            {
                "x": round(k * width, 1),
                "w": round(max(width - 1, 1), 1),
                "h": round(HIST_HEIGHT * n / peak, 1),
                "y": round(HIST_HEIGHT - HIST_HEIGHT * n / peak, 1),
                "n": n,
                "range": f"{h['edges'][k]:.1f}–{h['edges'][k + 1]:.1f}",
            }
            for k, n in enumerate(h["counts"])
        ]
        out.append({"name": name, "bars": bars, "width": HIST_WIDTH, "height": HIST_HEIGHT})
    return out


def render_statistics_result(result: dict) -> str:
    order = [item["name"] for item in result.get("indicators", [])]
    descriptive = result.get("descriptive", {}).get("indicators", {})
    return render_to_string(
        "taskcenter/statistics_result.html",
        {
            "result": result,
            "descriptive": [{"name": name, **descriptive[name]} for name in order if name in descriptive],
            "heatmap": heatmap(result["correlation"]) if result.get("correlation") else None,
            "histograms": histograms(result["distribution"], order) if result.get("distribution") else [],
        },
    )
