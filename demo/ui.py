"""The Gradio Blocks page: the tabs, laid out and wired one feature at a time.

It holds no maths: every number comes from core, and every picture either from core.views (the
server-rendered downloads, the teaching tools, /explain) or from the page's own viewer, which
draws core.payload's maps exactly as core.views would.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

from core import COLORMAPS, METHODS  # noqa: E402
from core.views import PANEL_TITLES  # noqa: E402
from core.weights import model_info  # noqa: E402
from demo import texts  # noqa: E402
from demo.common import (  # noqa: E402
    DEFAULT_MODEL,
    DEFAULT_PRECISION,
    MAX_TOP_K,
    NETWORK_CONCURRENCY,
    NETWORK_EVENTS,
    PRECISION_TEXTS,
    RENDER_CONCURRENCY,
    WAITING_EVENTS,
    example_paths,
    method_name,
    model_choices,
)
from demo.explore import Explorer  # noqa: E402
from demo.hide import add_hide_and_see  # noqa: E402
from demo.language import I18N, tr, words_for  # noqa: E402
from demo.live import LIVE_CSS, live_tab  # noqa: E402
from demo.pictures import ServerPictures  # noqa: E402
from demo.remote import ClusterRoute, cluster_route  # noqa: E402
from demo.status import layer_positions  # noqa: E402
from demo.teaching import Controls, add_teaching_tools  # noqa: E402
from demo.viewer import viewer_component  # noqa: E402


class UploadedImage(gr.Image):
    """gr.Image that hands the uploaded file's path over unopened.

    Gradio's own preprocessing opens every upload with Pillow and fails with a generic error on
    anything that is not an image; core.read_image gives the student a reason instead.
    """

    is_template = True  # the browser draws it with gr.Image's own front end

    def preprocess(self, payload):
        if payload is not None and payload.path is not None:
            return str(payload.path)
        return super().preprocess(payload)


@dataclass
class ExploreControls:
    """The Explore tab's inputs and outputs that more than one feature wires."""

    image: gr.Image
    model: gr.Dropdown
    layer: gr.Slider
    top_k: gr.Slider
    method: gr.Dropdown
    colormap: gr.Dropdown
    opacity: gr.Slider
    counterfactual: gr.Checkbox
    box: gr.Checkbox
    threshold: gr.Slider
    precision: gr.Radio
    status: gr.Markdown
    predictions: gr.Label
    top_class: gr.Radio
    any_class: gr.Dropdown
    viewer: gr.HTML
    banner: gr.Markdown


def _explore_layout(explorer: Explorer, categories: list[str], banner: gr.Markdown) -> ExploreControls:
    with gr.Row():
        with gr.Column(scale=1, min_width=320):
            image = UploadedImage(label=tr("UPLOAD_LABEL"), elem_id="upload", type="filepath", sources=["upload", "webcam", "clipboard"], format="png", height=300)
            gr.Examples(example_paths(), inputs=[image], label=tr("EXAMPLES_LABEL"), examples_per_page=8)
            model = gr.Dropdown(model_choices(), value=DEFAULT_MODEL, label=tr("MODEL_LABEL"), elem_id="model")
            layer = gr.Slider(1, 4, value=4, step=1, label=tr("LAYER_LABEL"), elem_id="layer", info=tr("LAYER_INFO"))
            top_k = gr.Slider(1, MAX_TOP_K, value=5, step=1, label=tr("TOP_K_LABEL"), elem_id="top-k")
            method = gr.Dropdown([(method_name(m), m) for m in METHODS], value="gradcam", label=tr("METHOD_LABEL"), info=tr("METHOD_INFO"), elem_id="method")
            with gr.Accordion(tr("MORE_CONTROLS"), open=False, elem_id="more-controls"):
                colormap = gr.Dropdown(list(COLORMAPS), value="jet", label=tr("COLORMAP_LABEL"), elem_id="colormap")
                opacity = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label=tr("OPACITY_LABEL"), elem_id="opacity")
                counterfactual = gr.Checkbox(value=False, label=tr("COUNTERFACTUAL_LABEL"), elem_id="counterfactual")
                box = gr.Checkbox(value=False, label=tr("BOX_LABEL"), elem_id="box")
                threshold = gr.Slider(0.05, 0.95, value=0.15, step=0.05, label=tr("BOX_THRESHOLD_LABEL"), elem_id="box-threshold")
                precision = gr.Radio(
                    [(tr(PRECISION_TEXTS[p]), p) for p in (("bfloat16", "float32") if DEFAULT_PRECISION == "bfloat16" else ("float32",))],
                    value=DEFAULT_PRECISION,
                    label=tr("PRECISION_LABEL"),
                    info=tr("PRECISION_INFO"),
                    elem_id="precision",
                )
        with gr.Column(scale=2):
            status = gr.Markdown(elem_id="status")
            predictions = gr.Label(label=tr("PREDICTIONS_LABEL"), num_top_classes=MAX_TOP_K, elem_id="predictions")
            top_class = gr.Radio(choices=[], label=tr("TOP_CLASS_LABEL"), type="value", elem_id="top-class")
            any_class = gr.Dropdown(
                [(f"{i} · {name}", i) for i, name in enumerate(categories)], value=None, label=tr("ANY_CLASS_LABEL"), filterable=True, elem_id="any-class"
            )
    viewer = viewer_component()
    return ExploreControls(
        image, model, layer, top_k, method, colormap, opacity, counterfactual, box, threshold, precision, status, predictions, top_class, any_class, viewer, banner
    )


def _wire_explore(explorer: Explorer, c: ExploreControls) -> None:
    """A new image, model, top-k, precision or method asks the server; every other control is drawn in the page."""
    network = dict(concurrency_id="network", concurrency_limit=NETWORK_EVENTS, api_visibility="undocumented")
    # Waiting for the background completion: its own group, so waiting events never hold the
    # slots of first views.
    # The viewer says itself which class is still being computed: no progress veil over it.
    waiting = dict(concurrency_id="waiting", concurrency_limit=WAITING_EVENTS, api_visibility="undocumented", show_progress="hidden")
    # A new explanation's stream starts at once, even while the last one's still runs (Gradio's
    # "once" would drop it: a quick second model switch never got its guided maps); the viewer
    # ignores pieces of an explanation it has left. Each class asked for is its own request too.
    streams = dict(waiting, trigger_mode="multiple")
    first = [c.viewer, c.predictions, c.top_class, c.any_class, c.status, c.banner]
    request = [c.image, c.model, c.top_k, c.method]
    for trigger in (c.image.change, c.model.change, c.top_k.release):
        trigger(explorer.on_new_input, [*request, c.layer], first, show_progress_on=[c.viewer], **network).then(explorer.on_rest, request, c.viewer, **streams)
    c.precision.change(explorer.on_precision, [c.precision], None, concurrency_id="render", concurrency_limit=RENDER_CONCURRENCY, api_visibility="undocumented").then(
        explorer.on_new_input, [*request, c.layer], first, show_progress_on=[c.viewer], **network
    ).then(explorer.on_rest, request, c.viewer, **streams)
    c.method.change(explorer.on_method, [*request[:3], c.method, c.any_class], c.viewer, **waiting)
    c.viewer.select(explorer.on_need, request[:3], c.viewer, **streams)

    # Drawn in the page, in the next animation frame: no request.
    local = dict(fn=None, api_visibility="private", queue=False)
    c.layer.input(js="(layer) => { window.gradcamViewer?.set({layer: Number(layer)}); }", inputs=[c.layer], **local)
    c.opacity.input(js="(opacity) => { window.gradcamViewer?.set({opacity: Number(opacity)}); }", inputs=[c.opacity], **local)
    c.colormap.change(js="(colormap) => { window.gradcamViewer?.set({colormap}); }", inputs=[c.colormap], **local)
    c.counterfactual.change(js="(counterfactual) => { window.gradcamViewer?.set({counterfactual}); }", inputs=[c.counterfactual], **local)
    c.box.change(js="(box) => { window.gradcamViewer?.set({box}); }", inputs=[c.box], **local)
    c.threshold.input(js="(threshold) => { window.gradcamViewer?.set({threshold: Number(threshold)}); }", inputs=[c.threshold], **local)
    # The search box follows the class picked among the predictions, so the teaching tools and
    # the downloads, which read it, explain the class on screen.
    c.top_class.select(js="(c) => { window.gradcamViewer?.set({classIdx: c}); return c; }", inputs=[c.top_class], outputs=[c.any_class], **local)
    c.any_class.input(js="(c) => { window.gradcamViewer?.set({classIdx: c}); }", inputs=[c.any_class], **local)


def _full_size(pictures: ServerPictures, c: ExploreControls) -> None:
    """The five panels at full resolution, server-rendered, on demand."""
    button = gr.Button(tr("FULL_SIZE_BUTTON"), size="sm", elem_id="full-size")
    files = gr.File(label=tr("FULL_SIZE_LABEL"), file_count="multiple", visible=False, interactive=False, elem_id="full-size-files")
    inputs = [c.image, c.model, c.layer, c.any_class, c.top_k, c.colormap, c.opacity, c.counterfactual, c.method]
    button.click(pictures.on_full_size, inputs, files, concurrency_id="render", concurrency_limit=RENDER_CONCURRENCY, api_visibility="undocumented")
    # Files made for another view would mislead. The page's own switches hide them in the page.
    hide = "() => { const files = document.querySelector('#full-size-files'); if (files) files.style.display = 'none'; }"
    for trigger in (c.layer.input, c.opacity.input, c.colormap.change, c.counterfactual.change, c.top_class.select, c.any_class.input):
        trigger(fn=None, js=hide, api_visibility="private", queue=False)
    button.click(fn=None, js="() => { const files = document.querySelector('#full-size-files'); if (files) files.style.display = ''; }", api_visibility="private", queue=False)
    gr.on(
        [c.image.change, c.model.change, c.top_k.release, c.method.change, c.precision.change],
        lambda: gr.update(value=None, visible=False), None, files, queue=False, api_visibility="undocumented",
    )


def _compare_methods(pictures: ServerPictures, c: ExploreControls) -> None:
    with gr.Accordion(tr("COMPARE_TITLE"), open=False):
        gr.Markdown(tr("COMPARE_HELP"))
        compare = gr.Button(tr("COMPARE_RUN"), variant="primary")
        comparison = gr.Gallery(label=tr("COMPARE_GALLERY"), columns=4, rows=2, height=620, format="png", object_fit="contain", interactive=False, elem_id="comparison")
        scores = gr.Markdown()
        with gr.Row():
            deletion = gr.LinePlot(x="fraction of pixels", y="class probability", color="method", title=tr("COMPARE_DELETION"), y_lim=[0, 1])
            insertion = gr.LinePlot(x="fraction of pixels", y="class probability", color="method", title=tr("COMPARE_INSERTION"), y_lim=[0, 1])
    compare.click(
        pictures.on_compare,
        [c.image, c.model, c.layer, c.any_class, c.top_k, c.colormap, c.opacity],
        [comparison, scores, deletion, insertion],
        concurrency_id="compare",
        concurrency_limit=NETWORK_CONCURRENCY,
        api_visibility="undocumented",
    )


def _api(pictures: ServerPictures, c: ExploreControls) -> None:
    """/explain: server-rendered panels, as the documented API has always returned them."""
    api_trigger = gr.Button(visible=False)
    panels = [gr.Image(label=title, format="png", visible=False) for title in PANEL_TITLES]
    api_trigger.click(
        pictures.api_explain,
        [c.image, c.model, c.layer, c.any_class, c.top_k],
        [*panels, c.predictions, c.status],
        api_name="explain",
        api_description=texts.API_DESCRIPTION,
        concurrency_id="network",
        concurrency_limit=NETWORK_EVENTS,
    )


CSS = """
.gradio-container label span, .gradio-container .label-wrap span { font-size: 1.05rem; }
#status { font-size: 1.05rem; }
#banner { border: 2px solid #d97706; border-radius: 8px; padding: 0 12px; background: rgba(217, 119, 6, 0.12); }
""" + LIVE_CSS


def build_demo(weights: str | None = None, cluster: ClusterRoute | None = None) -> gr.Blocks:
    """The page. ``weights`` defaults to $GRADCAM_WEIGHTS, else "imagenet" with a random fallback;
    ``cluster`` (default: from $GRADCAM_RAY_URL) computes the first views and their maps."""
    explorer = Explorer(weights or os.environ.get("GRADCAM_WEIGHTS", "imagenet"), cluster or cluster_route())
    pictures = ServerPictures(explorer)
    categories = model_info(explorer.shelf.get(DEFAULT_MODEL)).categories
    with gr.Blocks(title=texts.TITLE, delete_cache=(3600, 3600)) as demo:
        demo.explorer, demo.pictures = explorer, pictures
        gr.Markdown(tr("INTRO"))
        banner = gr.Markdown(visible=False, elem_id="banner")
        with gr.Tabs(elem_id="tabs") as tabs:
            with gr.Tab(tr("TAB_EXPLORE"), id="explore"):
                controls = _explore_layout(explorer, categories, banner)
                _wire_explore(explorer, controls)
                _full_size(pictures, controls)
                _compare_methods(pictures, controls)
                c = controls
                shared = Controls(c.image, c.model, c.layer, c.any_class, c.top_k, c.colormap, c.opacity, c.counterfactual, c.method)
                add_hide_and_see(explorer, shared)
                add_teaching_tools(explorer, shared)
                with gr.Accordion(tr("HELP_TITLE"), open=False):
                    gr.Markdown(tr("HELP"))
                _api(pictures, controls)
            with gr.Tab(tr("TAB_LIVE"), id="live"):
                live_tab(demo, explorer.shelf, categories, controls.image, tabs, network=explorer.scheduler.first_view, precision=DEFAULT_PRECISION)

        def layer_info(model_name: str, request: gr.Request = None) -> dict:
            return layer_positions(explorer.shelf, model_name, words_for(request))

        rendering = dict(concurrency_id="render", concurrency_limit=RENDER_CONCURRENCY, api_visibility="undocumented")
        controls.model.change(layer_info, [controls.model], [controls.layer], **rendering)
        demo.load(layer_info, [controls.model], [controls.layer], **rendering)
        demo.unload(explorer.on_unload)
    return demo


def launch_options() -> dict[str, Any]:
    """Safe defaults: localhost unless GRADIO_SERVER_NAME says otherwise, no share link, bounded uploads."""
    assets = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets")
    return dict(
        share=False,
        max_file_size="20mb",
        allowed_paths=[assets],
        css=CSS,
        theme=gr.themes.Soft(),
        footer_links=["api", "gradio"],
        i18n=I18N,
        ssr_mode=False,
        show_error=False,
    )
