"""Hide and see on the Explore tab: hide part of the image and watch the class's probability fall.

A student paints over part of the image (or hides the map's hottest 10/20/50%), picks what the
hidden pixels become, and sees the class on screen before and after: its probability, its map at
the slider's layer on one colour scale, and the top-5 of the edited image. Layout, wiring and
words only: the hiding, the second explanation and the shared scale come from core.occlusion,
the pictures from core.render. The original's Explanation comes from the Explorer's session
cache; the edited image's pass runs at first-view priority through its scheduler, and is not
cached: every edit is a new image, and it would push the main view out of the session's slots.
"""

from __future__ import annotations

from types import ModuleType

import gradio as gr
import numpy as np
from PIL import Image

from core import BadImageError, Explanation, read_image
from core.occlusion import FILLS, HOTTEST_FRACTIONS, HideAndSee, hide_and_see, hottest_mask
from core.render import overlay
from demo.common import DISPLAY_SIDE, NETWORK_EVENTS, RENDER_CONCURRENCY, PageError, session_of, user_errors
from demo.explore import Explorer
from demo.files import png_file
from demo.language import tr, words_for
from demo.teaching import Controls

#: The brush's one colour: vivid on photos, so the student sees what will be hidden.
PAINT = "#ff00ff"
FILL_NAMES = {"blur": "FILL_BLUR", "mean": "FILL_MEAN", "noise": "FILL_NOISE"}
TOP_AFTER = 5


def painted_mask(editor: dict | None, size: tuple[int, int]) -> np.ndarray:
    """Where the student painted on any of the editor's layers, as a (height, width) boolean mask
    at ``size`` (width, height): the editor works on the picture the explanation saw, but a
    browser may hand the layer back at another scale."""
    layers = [np.asarray(layer) for layer in (editor or {}).get("layers") or [] if layer is not None]
    painted = [layer[..., 3] > 0 for layer in layers if layer.ndim == 3 and layer.shape[2] == 4]
    if not painted:
        return np.zeros(size[::-1], dtype=bool)
    union = np.logical_or.reduce([p for p in painted if p.shape == painted[0].shape])
    return np.asarray(Image.fromarray(union).resize(size, Image.Resampling.NEAREST))


def percent(probability: float) -> str:
    """"62%", or "0.4%" for the small probabilities of an unsure (or untrained) model."""
    return f"{probability:.0%}" if probability >= 0.0095 else f"{probability:.1%}"


def points(drop: float) -> str:
    """A change of probability in percentage points, signed with a true minus: "−54", "+3", "−0.4", "±0"."""
    change = -drop * 100
    text = f"{change:+.0f}" if abs(change) >= 0.95 else f"{change:+.1f}"
    return "±0" if float(text) == 0 else text.replace("-", "−")


def summary(result: HideAndSee, words: ModuleType) -> str:
    """The result in sentences a student reads: "tabby: 62% → 8% (−54 points)", and what was hidden."""
    text = words.HIDE_RESULT.format(
        label=result.label, before=percent(result.probability_before), after=percent(result.probability_after), points=points(result.drop)
    )
    text += "\n\n" + words.HIDE_WHAT.format(share=f"{result.hidden:.0%}", fill=getattr(words, FILL_NAMES[result.fill]), layer=result.layer)
    if result.after_peak > 1:
        text += " " + words.HIDE_HOTTER.format(times=f"{result.after_peak:.1f}")
    return text


class HideAndSeeTool:
    """The handlers; they share the Explorer's models, cache and scheduler."""

    def __init__(self, explorer: Explorer) -> None:
        self.explorer = explorer

    def on_image(self, image: str | None) -> list:
        """A new image on the page: the editor gets the picture the network sees, the old results go."""
        try:
            picture = np.asarray(read_image(image, max_side=DISPLAY_SIDE)) if image else None
        except BadImageError:  # the main view already tells the student what is wrong with it
            picture = None
        editor = None if picture is None else {"background": picture, "layers": [], "composite": picture}
        return [editor, "", None, None, None]

    @user_errors
    def on_hide(self, image, editor, model_name, layer, class_idx, top_k, fill, colormap, opacity, request: gr.Request = None) -> list:
        """Hides what the student painted."""
        explanation, c = self._original(image, model_name, layer, class_idx, top_k, request)
        mask = painted_mask(editor, explanation.image.size)
        if not mask.any():
            raise PageError("HIDE_NOTHING_PAINTED")
        return self._show(explanation, model_name, mask, fill, c, layer, colormap, opacity, request)

    @user_errors
    def on_hide_hottest(self, image, model_name, layer, class_idx, top_k, fill, share, colormap, opacity, request: gr.Request = None) -> list:
        """Hides the hottest ``share`` of the original's Grad-CAM map at the slider's layer."""
        explanation, c = self._original(image, model_name, layer, class_idx, top_k, request)
        mask = hottest_mask(explanation.cam(c, int(layer)), float(share))
        return self._show(explanation, model_name, mask, fill, c, layer, colormap, opacity, request)

    def _original(self, image, model_name, layer, class_idx, top_k, request) -> tuple[Explanation, int]:
        explanation = self.explorer.explanation(image, model_name, top_k, session_of(request))
        c = explanation.top_classes[0] if class_idx is None else int(class_idx)
        self.explorer.ready(explanation, c, int(layer))
        return explanation, c

    def _show(self, explanation, model_name, mask, fill, c, layer, colormap, opacity, request) -> list:
        model = self.explorer.shelf.get(model_name)
        with self.explorer.scheduler.first_view():  # someone is watching a spinner
            result = hide_and_see(model, explanation, mask, fill, c, int(layer), explanation.precision)
        before = overlay(explanation.image, result.cam_before, colormap, opacity)
        after = overlay(result.edited, result.cam_after, colormap, opacity)
        top = {p.label: p.probability for p in result.top_after[:TOP_AFTER]}
        return [summary(result, words_for(request)), png_file(before, "hide-before"), png_file(after, "hide-after"), top]


def add_hide_and_see(explorer: Explorer, controls: Controls) -> HideAndSeeTool:
    """Lays the tool out inside the current Blocks context, as an accordion, and wires it to the page."""
    tool = HideAndSeeTool(explorer)
    c = controls
    with gr.Accordion(tr("HIDE_TITLE"), open=False, elem_id="hide"):
        gr.Markdown(tr("HIDE_HELP"))
        with gr.Row():
            with gr.Column(scale=1, min_width=320):
                editor = gr.ImageEditor(
                    label=tr("HIDE_EDITOR_LABEL"),
                    type="numpy",
                    image_mode="RGBA",
                    sources=[],  # the picture is the page's: painting on another would explain nothing on screen
                    transforms=[],  # a crop would move the mask off the pixels it was painted on
                    layers=False,
                    brush=gr.Brush(colors=[PAINT], color_mode="fixed"),
                    format="png",
                    height=380,
                    elem_id="hide-editor",
                )
                fill = gr.Radio([(tr(FILL_NAMES[f]), f) for f in FILLS], value="blur", label=tr("HIDE_FILL_LABEL"), info=tr("HIDE_FILL_INFO"), elem_id="hide-fill")
                run = gr.Button(tr("HIDE_RUN"), variant="primary", elem_id="hide-run")
                share = gr.Radio([(f"{f:.0%}", f) for f in HOTTEST_FRACTIONS], value=0.2, label=tr("HIDE_HOTTEST_LABEL"), elem_id="hide-share")
                hottest = gr.Button(tr("HIDE_HOTTEST_RUN"), elem_id="hide-hottest")
            with gr.Column(scale=2):
                result = gr.Markdown(elem_id="hide-summary")
                with gr.Row():
                    before = gr.Image(label=tr("HIDE_BEFORE"), format="png", interactive=False, elem_id="hide-before", buttons=["fullscreen"])
                    after = gr.Image(label=tr("HIDE_AFTER"), format="png", interactive=False, elem_id="hide-after", buttons=["fullscreen"])
                top = gr.Label(label=tr("HIDE_TOP_AFTER"), num_top_classes=TOP_AFTER, elem_id="hide-top")
    shown = [result, before, after, top]
    c.image.change(tool.on_image, [c.image], [editor, *shown], concurrency_id="render", concurrency_limit=RENDER_CONCURRENCY, api_visibility="undocumented", show_progress="hidden")
    # One pass at first-view priority, like a new image: the "network" group, whose order the scheduler decides.
    network = dict(concurrency_id="network", concurrency_limit=NETWORK_EVENTS, api_visibility="undocumented", show_progress_on=[before, after])
    run.click(tool.on_hide, [c.image, editor, c.model, c.layer, c.class_idx, c.top_k, fill, c.colormap, c.opacity], shown, **network)
    hottest.click(tool.on_hide_hottest, [c.image, c.model, c.layer, c.class_idx, c.top_k, fill, share, c.colormap, c.opacity], shown, **network)
    return tool
