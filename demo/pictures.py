"""The pictures the server still renders (core.views): the "full-resolution panels" download,
the method comparison, and the documented /explain endpoint.

The Explore tab's own panels are drawn in the page (demo/viewer.js); these are PNG files made
on the server from the same Explanation, which comes from the Explorer's session cache, with
every pass through its scheduler.
"""

from __future__ import annotations

import contextlib
import time

import gradio as gr
import numpy as np
import pandas as pd

from core import METHODS, Explanation
from core.methods import PERTURBATION_METHODS
from core.views import PANEL_TITLES, cam_pictures, guided_pictures, method_comparison
from demo.common import method_name, session_of, user_errors
from demo.explore import Explorer
from demo.files import png_file
from demo.language import words_for
from demo.status import Summary, confidences, status_line


class ServerPictures:
    """The handlers; they share the Explorer's models, cache and scheduler."""

    def __init__(self, explorer: Explorer) -> None:
        self.explorer = explorer

    def view(self, explanation: Explanation, class_idx: int, layer: int, colormap: str, opacity: float, counterfactual: bool, method: str) -> list[np.ndarray]:
        """The five panels rendered on the server at full (display-capped) resolution."""
        self.explorer.ready(explanation, class_idx, layer)
        slow = method in PERTURBATION_METHODS
        with self.explorer.network(explanation, background=True) if slow else contextlib.nullcontext():
            first = cam_pictures(explanation, class_idx, layer, colormap=colormap, opacity=opacity, counterfactual=counterfactual, method=method)
        return [*first[:3], *guided_pictures(explanation, class_idx, first.cam01)]

    @user_errors
    def on_full_size(self, image, model_name, layer, class_idx, top_k, colormap, opacity, counterfactual, method="gradcam", request: gr.Request = None) -> dict:
        """The five panels at the upload's full (display-capped) resolution, as PNG files to download."""
        explanation = self.explorer.explanation(image, model_name, top_k, session_of(request))
        class_idx = explanation.top_classes[0] if class_idx is None else int(class_idx)
        label = explanation.info.categories[class_idx].replace(" ", "_").replace("/", "_")
        pictures = self.view(explanation, class_idx, layer, colormap, opacity, counterfactual, method)
        names = [f"{n}-{title.lower().replace(' ', '-')}-{label}-layer{int(layer)}" for n, title in enumerate(PANEL_TITLES, start=1)]
        # Only files handed to a component are aged out by delete_cache: write no others.
        return gr.update(value=[png_file(picture, name) for picture, name in zip(pictures, names)], visible=True)

    @user_errors
    def on_compare(self, image, model_name, layer, class_idx, top_k, colormap, opacity, request: gr.Request = None, progress=gr.Progress()):
        """Every method side by side for the class and layer, scored by deletion and insertion."""
        explanation = self.explorer.explanation(image, model_name, top_k, session_of(request))
        class_idx = explanation.top_classes[0] if class_idx is None else int(class_idx)
        done = []

        def report(method: str) -> None:
            progress(len(done) / len(METHODS), desc=f"{method_name(method)}…")
            done.append(method)

        with self.explorer.network(explanation, background=True):  # many passes: other students' first views go first
            views = method_comparison(explanation, class_idx, layer, colormap=colormap, opacity=opacity, on_method=report)
        tiles = [
            (png_file(v.overlay), f"{method_name(v.method)} · del {v.faithfulness.deletion_auc:.3f} · ins {v.faithfulness.insertion_auc:.3f}")
            for v in views
        ]
        words = words_for(request)
        rows = [
            words.COMPARE_COLUMNS,
            "|---|---|---|---|",
            *(
                f"| {method_name(v.method)} | {v.faithfulness.deletion_auc:.3f} | {v.faithfulness.insertion_auc:.3f} | {v.faithfulness.average_drop:.1%} |"
                for v in views
            ),
        ]
        label = explanation.info.categories[class_idx]
        heading = words.COMPARE_HEADING.format(label=label, layer=int(layer))
        return tiles, heading + "\n\n" + "\n".join(rows), _curves(views, "deletion"), _curves(views, "insertion")

    @user_errors
    def api_explain(self, image, model_name, layer, class_idx, top_k, request: gr.Request = None):
        """The documented /explain endpoint."""
        started = time.perf_counter()
        explanation = self.explorer.explanation(image, model_name, top_k, session_of(request))
        class_idx = explanation.top_classes[0] if class_idx is None else int(class_idx)
        pictures = [png_file(picture) for picture in self.view(explanation, class_idx, layer, "jet", 0.5, False, "gradcam")]
        summary = Summary.of(explanation)
        status = status_line(summary, model_name, time.perf_counter() - started, words_for(request))
        return [*pictures, confidences(summary), status]


def _curves(views, curve: str) -> pd.DataFrame:
    """One long table of a curve for every method, as gr.LinePlot draws it."""
    return pd.DataFrame(
        [
            {"fraction of pixels": f, "class probability": p, "method": method_name(v.method)}
            for v in views
            for f, p in zip(v.faithfulness.fractions, getattr(v.faithfulness, curve))
        ]
    )
