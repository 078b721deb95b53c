"""The teaching tools on the Explore tab: the sanity check, model against model, and a handout.

Layout, wiring and words only: the randomisation and the similarities come from core.sanity,
the side-by-side views from core.compare, the page from core.handout. Every network pass goes
through the Explorer's session cache and scheduler, like the rest of the page.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from types import ModuleType

import gradio as gr
import numpy as np
import pandas as pd

from core import MODELS
from core.compare import check_same_labels, model_comparison
from core.handout import ENGLISH, PRINTABLE_COLORMAPS, handout, handout_bytes
from core.methods import PERTURBATION_METHODS
from core.sanity import METHOD_TITLES, SanityResult, sanity_check, sanity_grid
from demo import texts
from demo.common import DEFAULT_MODEL, NETWORK_CONCURRENCY, PageError, model_choices, session_of, slot_waiting, user_errors
from demo.explore import Explorer
from demo.files import cache_file, png_file
from demo.language import LANGUAGES, font_for, language_of, tr, words_for

#: Compare at most this many models at once: each costs a pass and an entry in the session cache.
MAX_COMPARED = 3
STEP_ORDER = ["original", "head", "layer4", "layer3", "layer2", "layer1", "stem"]
#: The handout's colour choice: a printable colormap, or the page's own.
AS_ON_THE_PAGE = "page"


@dataclass(frozen=True)
class Controls:
    """The Explore tab's inputs that the teaching tools read."""

    image: gr.components.Component
    model: gr.components.Component
    layer: gr.components.Component
    class_idx: gr.components.Component
    top_k: gr.components.Component
    colormap: gr.components.Component
    opacity: gr.components.Component
    counterfactual: gr.components.Component
    method: gr.components.Component


class TeachingTools:
    """The handlers; they share the Explorer's models, cache and scheduler."""

    def __init__(self, explorer: Explorer) -> None:
        self.explorer = explorer

    def _class(self, explanation, class_idx) -> int:
        return explanation.top_classes[0] if class_idx is None else int(class_idx)

    @user_errors
    def on_sanity(self, image, model_name, layer, class_idx, top_k, request: gr.Request = None, progress=gr.Progress()):
        """The cascading randomisation of a private copy: grid, curves and a plain-words summary."""
        explanation = self.explorer.explanation(image, model_name, top_k, session_of(request), progress)
        c = self._class(explanation, class_idx)
        # Seven passes: other students' first views go first. The model first, then the gate (Explorer.network).
        with self.explorer.shelf.lease(model_name, slot_waiting(progress)) as model, self.explorer.scheduler.background():
            result = sanity_check(model, explanation.image, c, int(layer), progress=lambda f, what: progress(f, desc=what))
        grid = png_file(np.asarray(sanity_grid(result)), "sanity-check")
        rank, ssim = sanity_curves(result)
        return grid, rank, ssim, sanity_summary(result, trained=explanation.info.trained, words=words_for(request))

    @user_errors
    def on_compare_models(self, image, model_name, chosen, class_idx, top_k, colormap, opacity, request: gr.Request = None, progress=gr.Progress()):
        """The same class, matched by index, at each chosen model's layer4."""
        chosen = sorted(set(chosen or []), key=list(MODELS).index)  # the dropdown's order, whatever the clicks
        if not 2 <= len(chosen) <= MAX_COMPARED:
            raise PageError("COMPARE_MODELS_COUNT", count=len(chosen))
        session = session_of(request)
        main = self.explorer.explanation(image, model_name, top_k, session)
        c = self._class(main, class_idx)
        explanations = []
        for n, name in enumerate(chosen):
            progress(n / len(chosen), desc=f"{name}…")
            explanation = self.explorer.explanation(image, name, top_k, session, progress)  # cached like the main view
            explanations.append(explanation)
        check_same_labels(explanations)  # before any pass for the class
        for explanation in explanations:
            self.explorer.ready(explanation, c, 4)
        views = model_comparison(explanations, c, 4, colormap=colormap, opacity=opacity)
        label = main.info.categories[c]
        words = words_for(request)
        tiles = [(png_file(v.overlay, f"compare-{v.model}"), f"{v.model} · {v.stage} · {label} {v.probability:.1%}") for v in views]
        rows = [
            words.COMPARE_MODELS_HEADING.format(label=label, index=c),
            "",
            words.COMPARE_MODELS_COLUMNS,
            "|---|---|---|",
            *(f"| {v.model}{'' if v.trained else words.COMPARE_MODELS_UNTRAINED} | {v.probability:.1%} | {v.top.label} ({v.top.probability:.1%}) |" for v in views),
        ]
        return gr.Gallery(value=tiles, columns=len(tiles)), "\n".join(rows)

    @user_errors
    def on_handout(self, image, model_name, layer, class_idx, top_k, colormap, opacity, counterfactual, method, colours, file_format, request: gr.Request = None):
        """The current view as one printable page, PNG or PDF."""
        explanation = self.explorer.explanation(image, model_name, top_k, session_of(request))
        c = self._class(explanation, class_idx)
        self.explorer.ready(explanation, c, 1)  # the page shows every layer
        colormap = colormap if colours == AS_ON_THE_PAGE else colours
        slow = method in PERTURBATION_METHODS  # four Score-/Ablation-CAM maps
        with self.explorer.network(explanation, background=True) if slow else contextlib.nullcontext():
            sheet = handout(explanation, c, int(layer), colormap=colormap, opacity=opacity, counterfactual=counterfactual, method=method, **handout_language(request))
        suffix = file_format.lower()
        label = re.sub(r"[^A-Za-z0-9]+", "-", explanation.info.categories[c]).strip("-") or f"class-{c}"
        path = cache_file(handout_bytes(sheet, suffix), f"handout-{model_name}-{label}-layer{int(layer)}.{suffix}")
        return path, png_file(np.asarray(sheet.page), "handout-preview")


def handout_language(request: gr.Request | None) -> dict:
    """The handout's words and font for the browser's language; English where no installed font
    has its letters, rather than a page of empty boxes."""
    language = language_of(request)
    font = font_for(language)
    words = LANGUAGES[language].HANDOUT
    return dict(words=words if font is not None or words == ENGLISH else ENGLISH, font=font)


def sanity_curves(result: SanityResult) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Long tables for the two line plots: rank correlation and SSIM against the step."""
    rows = [
        {
            "randomised down to": row["randomised"],
            "method": METHOD_TITLES[row["method"]],
            "rank correlation": row["spearman_abs"],
            "SSIM": row["ssim"],
        }
        for row in result.rows()
    ]
    table = pd.DataFrame(rows)
    # A blank map has no ranking: its point stays empty (the line breaks there) rather than drawn as 0.
    return table.drop(columns="SSIM"), table.drop(columns="rank correlation")


def sanity_summary(result: SanityResult, *, trained: bool, words: ModuleType = texts) -> str:
    """The figures in a sentence a student can check against the grid."""
    step = result.step("layer4") if "layer4" in {s.name for s in result.steps} else result.steps[-1]

    def figure(method: str) -> str:
        value = step.similarity[method].spearman_abs
        return words.SANITY_BLANK if np.isnan(value) else f"{value:.2f}"

    parts = [f"{METHOD_TITLES[m]} {figure(m)}" for m in result.methods]
    text = words.SANITY_SUMMARY.format(label=result.label, index=result.class_idx, layer=result.layer, step=step.name, figures=", ".join(parts))
    if not trained:
        text += words.SANITY_UNTRAINED
    return text


def add_teaching_tools(explorer: Explorer, controls: Controls) -> TeachingTools:
    """Lays out the three tools inside the current Blocks context and wires them to the page."""
    tools = TeachingTools(explorer)
    c = controls
    network = dict(concurrency_id="teaching", concurrency_limit=NETWORK_CONCURRENCY, api_visibility="undocumented")

    with gr.Accordion(tr("SANITY_TITLE"), open=False, elem_id="sanity"):
        gr.Markdown(tr("SANITY_HELP"))
        run = gr.Button(tr("SANITY_RUN"), variant="primary", elem_id="sanity-run")
        summary = gr.Markdown(elem_id="sanity-summary")
        grid = gr.Image(label=tr("SANITY_GRID"), show_label=False, format="png", interactive=False, elem_id="sanity-grid", buttons=["download", "fullscreen"])
        with gr.Row():
            plot = dict(x="randomised down to", color="method", sort=STEP_ORDER, y_lim=[-1, 1], height=300)
            rank = gr.LinePlot(y="rank correlation", title=tr("SANITY_RANK"), elem_id="sanity-rank", **plot)
            ssim = gr.LinePlot(y="SSIM", title=tr("SANITY_SSIM"), elem_id="sanity-ssim", **plot)
    run.click(tools.on_sanity, [c.image, c.model, c.layer, c.class_idx, c.top_k], [grid, rank, ssim, summary], show_progress_on=[grid], **network)

    with gr.Accordion(tr("COMPARE_MODELS_TITLE"), open=False, elem_id="compare-models"):
        gr.Markdown(tr("COMPARE_MODELS_HELP"))
        second = next(m for m in MODELS if m != DEFAULT_MODEL)
        chosen = gr.CheckboxGroup(model_choices(), value=[DEFAULT_MODEL, second], label=tr("COMPARE_MODELS_CHOICE"), elem_id="compare-models-choice")
        compare = gr.Button(tr("COMPARE_MODELS_RUN"), variant="primary", elem_id="compare-models-run")
        table = gr.Markdown(elem_id="compare-models-table")
        gallery = gr.Gallery(label=tr("COMPARE_MODELS_GALLERY"), columns=MAX_COMPARED, rows=1, height="auto", format="png", object_fit="contain", interactive=False, elem_id="compare-models-gallery")
    compare.click(tools.on_compare_models, [c.image, c.model, chosen, c.class_idx, c.top_k, c.colormap, c.opacity], [gallery, table], **network)

    with gr.Accordion(tr("HANDOUT_TITLE"), open=False, elem_id="handout"):
        gr.Markdown(tr("HANDOUT_HELP"))
        with gr.Row():
            colours = gr.Radio(
                [*PRINTABLE_COLORMAPS, (tr("HANDOUT_AS_PAGE"), AS_ON_THE_PAGE)],
                value=PRINTABLE_COLORMAPS[0],
                label=tr("HANDOUT_COLOURS"),
                info=tr("HANDOUT_COLOURS_INFO"),
            )
            file_format = gr.Radio(["PNG", "PDF"], value="PNG", label=tr("HANDOUT_FILE_FORMAT"))
        make = gr.Button(tr("HANDOUT_RUN"), variant="primary", elem_id="handout-run")
        with gr.Row():
            download = gr.File(label=tr("HANDOUT_FILE"), interactive=False, elem_id="handout-file")
            preview = gr.Image(label=tr("HANDOUT_PREVIEW"), format="png", interactive=False, height=420, elem_id="handout-preview")
    make.click(
        tools.on_handout,
        [c.image, c.model, c.layer, c.class_idx, c.top_k, c.colormap, c.opacity, c.counterfactual, c.method, colours, file_format],
        [download, preview],
        **network,
    )
    return tools
