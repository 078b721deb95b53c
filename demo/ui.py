"""The Gradio Blocks page: layout, event wiring and the translation of core errors to gr.Error.

It holds no maths: every number comes from core.explain and every picture from core.views.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import io
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import cv2  # noqa: E402
import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from gradio.utils import get_upload_folder  # noqa: E402
from PIL import Image  # noqa: E402

from core import COLORMAPS, METHODS, MODELS, PRECISIONS, BadImageError, Explanation, ModelLoadError, describe_stages, explain, native_bfloat16, read_image  # noqa: E402
from core.methods import METHOD_INFO, PERTURBATION_METHODS  # noqa: E402
from core.views import PANEL_TITLES, cam_pictures, guided_pictures, layer_overlays, method_comparison  # noqa: E402
from core.weights import MODEL_FAMILIES, model_info  # noqa: E402
from demo import texts  # noqa: E402
from demo.scheduler import HANDLERS, Completer, NetworkScheduler, network_concurrency  # noqa: E402
from demo.live import LIVE_CSS, live_tab  # noqa: E402
from demo.session import ExplanationCache, ModelShelf, image_digest  # noqa: E402

DEFAULT_MODEL = "resnet50"
#: Uploads are explained and shown at most this large: the model sees ≤448 px anyway.
DISPLAY_SIDE = 640
#: The page draws its panels and strip this large (a panel is ~260 CSS px high): a third of the
#: pixels of a 640 px panel to render, encode, send and decode. The API and the "full
#: resolution" button give DISPLAY_SIDE.
PANEL_SIDE = 384
MAX_TOP_K = 10
#: Network passes at once: 1 on a 2-vCPU Space (one pass saturates both), one per 4 cores beyond,
#: or $GRADCAM_NETWORK_CONCURRENCY (see demo.scheduler).
NETWORK_CONCURRENCY = network_concurrency()
#: Events that may run the network enter their handler this many at a time; the scheduler, not
#: Gradio's queue, then orders their passes, so it sees every waiting first view.
NETWORK_EVENTS = 8 * NETWORK_CONCURRENCY
#: Re-rendering from a cached Explanation is cheap numpy and PNG work.
RENDER_CONCURRENCY = 4
#: layer1..layer4 strips waiting for their background completion.
DEPTH_EVENTS = 16

#: The page's maps: bfloat16 where the hardware does it natively (faster; every map r ≥ 0.999 against
#: float32, see core.engine), exact float32 otherwise. "More controls" switches it per session.
DEFAULT_PRECISION = "bfloat16" if native_bfloat16() else "float32"
PRECISION_NAMES = {"bfloat16": "fast (bfloat16)", "float32": "exact (float32)"}

try:  # On a ZeroGPU Space, spaces.GPU lends the decorated call a GPU; elsewhere it is absent.
    import spaces

    _on_gpu: Callable[[Callable], Callable] = spaces.GPU
except ImportError:

    def _on_gpu(fn: Callable) -> Callable:
        return fn


@_on_gpu
def _explain_on_device(model, picture, top_k: int, precision: str) -> Explanation:
    return explain(model, picture, top_k=top_k, lazy=True, precision=precision)


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


def png_file(picture: np.ndarray, name: str = "panel") -> str:
    """The picture as a lossless PNG file in Gradio's cache, which serves it as is.

    OpenCV's encoder with Huffman-only deflate: five 640×427 panels took 101 ms of CPU against
    174 ms for Pillow at zlib level 1 (Gradio's default level 6 is slower still), and the files
    came out 10% smaller. Gradio's delete_cache ages them out.
    """
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(picture, cv2.COLOR_RGB2BGR), PNG_PARAMS)
    if not ok:
        raise ValueError(f"could not encode a {picture.shape} picture as PNG")
    return cache_file(encoded.tobytes(), f"{name}.png")


PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_HUFFMAN_ONLY]


def cache_file(data: bytes, filename: str) -> str:
    """The bytes as a file in Gradio's cache, in a folder named by their hash, served as is."""
    folder = Path(get_upload_folder()) / hashlib.blake2b(data, digest_size=16).hexdigest()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / filename
    path.write_bytes(data)
    return str(path)


def _user_errors(handler: Callable) -> Callable:
    """The one place where core's typed errors become messages in the browser."""

    @contextlib.contextmanager
    def translated():
        try:
            with HANDLERS():  # counted, so that the process lets it end before exiting
                yield
        except (BadImageError, ModelLoadError) as err:
            raise gr.Error(str(err), title="Cannot explain this") from err
        except ValueError as err:
            raise gr.Error(f"Invalid request: {err}") from err

    if inspect.isgeneratorfunction(handler):  # Gradio streams a generator's yields: wrap it as one

        @functools.wraps(handler)
        def streamed(*args, **kwargs):
            with translated():
                yield from handler(*args, **kwargs)

        return streamed

    @functools.wraps(handler)
    def wrapped(*args, **kwargs):
        with translated():
            return handler(*args, **kwargs)

    return wrapped


def last_values(steps: Iterable[list]) -> list:
    """What a streamed handler leaves on the page: per output, its last value (gr.skip() keeps one)."""
    final: list = []
    for step in steps:
        if not final:
            final = list(step)
            continue
        for n, value in enumerate(step):
            if isinstance(value, dict) and value.get("__type__") == "update" and isinstance(final[n], dict):
                final[n] = {**final[n], **value}
            elif not (isinstance(value, dict) and value == gr.skip()):
                final[n] = value
    return final


def _session(request: gr.Request | None) -> str:
    return (request.session_hash if request is not None else None) or "direct-call"


def class_choices(explanation: Explanation) -> list[tuple[str, int]]:
    return [(f"{p.label} · {p.probability:.1%}", p.index) for p in explanation.predictions]


def method_name(method: str) -> str:
    """The method's display name, e.g. "Grad-CAM++", from the first words of its description."""
    return METHOD_INFO[method].split(":")[0]


class Explorer:
    """The page's event handlers and the server-side state they share."""

    def __init__(self, weights: str = "imagenet") -> None:
        self.shelf = ModelShelf(weights)
        self.cache = ExplanationCache()
        self.scheduler = NetworkScheduler(NETWORK_CONCURRENCY)
        self.completer = Completer(self.scheduler)
        self._precisions: dict[str, str] = {}  # per session, when it differs from DEFAULT_PRECISION

    def precision(self, session: str) -> str:
        return self._precisions.get(session, DEFAULT_PRECISION)

    def on_precision(self, precision: str, request: gr.Request = None) -> None:
        """The session's maps from now on; the chained new-input event then redraws the page."""
        if precision not in PRECISIONS:
            raise gr.Error(f"Invalid request: precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
        self._precisions[_session(request)] = precision

    # ----- getting an Explanation -------------------------------------------------------

    def explanation(self, image: str | None, model_name: str, top_k: int, session: str, progress: gr.Progress | None = None) -> Explanation:
        if not image:
            raise BadImageError("Upload an image first (or click one of the examples).")
        if model_name not in MODELS:
            raise ValueError(f"unknown model {model_name!r}; choose one of {', '.join(MODELS)}")
        precision = self.precision(session)
        try:
            key = (image_digest(image), model_name, int(top_k), precision)
        except OSError as err:
            raise BadImageError(f"The upload could not be read ({err.strerror or err}). Please upload it again.") from err
        found = self.cache.get(session, key)
        if found is not None:
            return found
        if progress is not None:
            progress(0.1, desc=f"Loading {model_name}…")
        model = self.shelf.get(model_name)
        if progress is not None:
            progress(0.5, desc="Running the network…")
        # max_side lets a big JPEG decode at 1/2, 1/4 or 1/8 scale: a 4032×3024 photo in ~35 ms, not ~190.
        picture = read_image(image, max_side=DISPLAY_SIDE)
        with self.scheduler.first_view():
            explanation = _explain_on_device(model, picture, int(top_k), precision)
        self.cache.put(session, key, explanation)
        return explanation

    def ready(self, explanation: Explanation, class_idx: int, layer: int) -> Explanation:
        """Makes sure a view of (class, layer) runs no pass of its own outside the scheduler.

        The lazy first pass holds the top class at layer4. Any other top-k view needs the whole
        top-k, which is what the background completion computes: if it has not started yet, the
        student's switch takes it over at first-view priority; if it is running, the switch waits
        only until it has stored the switch's class. A class outside the top-k costs one pass of
        its own, also at first-view priority.
        """
        if explanation.drawable(class_idx, layer):
            return explanation
        if class_idx in explanation.top_classes:
            self.completer.now(explanation, until=lambda: explanation.drawable(class_idx, layer))
        else:
            self.completer.settle(explanation)  # a running completion holds the Explanation's lock
            with self.scheduler.first_view():
                explanation.gradients(class_idx, 1)  # one pass brings its stage and guided gradients
                explanation.guided_backprop(class_idx)
        return explanation

    # ----- what the page shows ----------------------------------------------------------

    def status(self, explanation: Explanation, model_name: str, seconds: float | None = None) -> str:
        info = explanation.info
        height, width = explanation.input_tensor.shape[-2:]
        timing = f" · {seconds * 1000:.0f} ms" if seconds is not None else ""
        trained = "" if info.trained else " · ⚠️ **untrained: predictions are meaningless**"
        rule = "" if explanation.has_relu else f"\n\n{texts.NO_RELU}"
        precision = PRECISION_NAMES.get(explanation.precision, explanation.precision)
        return f"**{model_name}** · weights: {info.weights}{trained} · model input {width}×{height} · maps in {precision}{timing}{rule}"

    def banner(self, model_name: str) -> dict:
        reason = self.shelf.fallback_reason(model_name)
        if reason is None and self.shelf.weights != "random":
            return gr.update(visible=False, value="")
        reason = reason or "The app was started with random weights (GRADCAM_WEIGHTS=random)."
        return gr.update(visible=True, value=texts.UNTRAINED_BANNER.format(model=model_name, reason=reason))

    @staticmethod
    def confidences(explanation: Explanation) -> dict[str, float]:
        return {p.label: p.probability for p in explanation.predictions}

    def predictions(self, explanation: Explanation) -> dict:
        heading = "Predictions" if explanation.info.trained else "Predictions (untrained model)"
        return gr.update(value=self.confidences(explanation), label=heading)

    def view_steps(
        self, explanation: Explanation, class_idx: int, layer: int, colormap: str, opacity: float, counterfactual: bool, method: str, max_side: int | None = None
    ) -> Iterator[list[str]]:
        """The five panel files in two steps: original, heatmap and overlay first, then the guided two."""
        self.ready(explanation, class_idx, layer)
        # Score-CAM and Ablation-CAM run batches through the network: they wait for a quiet moment.
        slow = method in PERTURBATION_METHODS
        with self.scheduler.background() if slow else contextlib.nullcontext():
            first = cam_pictures(
                explanation, class_idx, layer, colormap=colormap, opacity=opacity, counterfactual=counterfactual, method=method, max_side=max_side
            )
        yield [png_file(picture) for picture in first[:3]]
        yield [png_file(picture) for picture in guided_pictures(explanation, class_idx, first.cam01)]

    def view(self, explanation: Explanation, class_idx: int, layer: int, colormap: str, opacity: float, counterfactual: bool, method: str, max_side: int | None = None) -> list[str]:
        return [path for step in self.view_steps(explanation, class_idx, layer, colormap, opacity, counterfactual, method, max_side) for path in step]

    @staticmethod
    def captions(method: str) -> tuple[dict, dict]:
        """The heatmap and Guided Grad-CAM panels are named after the method that made them."""
        name = method_name(method)
        return gr.update(label=f"{name} heatmap"), gr.update(label=f"Guided {name}")

    @staticmethod
    def depth_strip(explanation: Explanation, class_idx: int, colormap: str, opacity: float, counterfactual: bool, method: str) -> list:
        overlays = layer_overlays(explanation, class_idx, colormap=colormap, opacity=opacity, counterfactual=counterfactual, method=method, max_side=PANEL_SIDE)
        return [(png_file(picture), caption) for caption, picture in overlays]

    # ----- events -----------------------------------------------------------------------

    @_user_errors
    def new_input_steps(self, image, model_name, layer, top_k, colormap, opacity, counterfactual, method="gradcam", request: gr.Request = None, progress=gr.Progress()):
        """A new image, model or top-k: one network pass, then the panels in two steps.

        The first step (Grad-CAM panels, predictions, status) leaves as soon as it is drawn; the
        guided ones follow in the same event, and the top-k is completed in the background.
        """
        if not image:
            yield [None] * 5 + [gr.update(value=None), gr.update(choices=[], value=None), None, "", self.banner(model_name)]
            return
        started = time.perf_counter()
        explanation = self.explanation(image, model_name, top_k, _session(request), progress)
        try:
            top = explanation.top_classes[0]
            steps = self.view_steps(explanation, top, layer, colormap, opacity, counterfactual, method, PANEL_SIDE)
            original, heat, overlay_file = next(steps)
            heat_caption, guided_caption = self.captions(method)
            yield [
                original,
                {**heat_caption, "value": heat},
                overlay_file,
                None,
                {**guided_caption, "value": None},
                self.predictions(explanation),
                gr.update(choices=class_choices(explanation), value=top),
                top,
                self.status(explanation, model_name, time.perf_counter() - started),
                self.banner(model_name),
            ]
            yield [gr.skip()] * 3 + next(steps) + [gr.skip()] * 5
        finally:
            self.completer.submit(explanation)  # the whole top-k in the background: later switches are cache hits

    def on_new_input(self, *args, **kwargs) -> list:
        """What new_input_steps leaves on the page, in one list (for direct calls and tests)."""
        return last_values(self.new_input_steps(*args, **kwargs))

    @_user_errors
    def view_and_strip(self, image, model_name, layer, class_idx, top_k, colormap, opacity, counterfactual, method="gradcam", request: gr.Request = None):
        """A class, colormap, opacity, method or counterfactual change: the panels, then the strip, in one event."""
        if not image:
            yield [None] * 5 + [gr.update(), gr.update(), gr.skip()]
            return
        explanation = self.explanation(image, model_name, top_k, _session(request))
        class_idx = explanation.top_classes[0] if class_idx is None else int(class_idx)
        yield [*self.view_outputs(explanation, class_idx, layer, colormap, opacity, counterfactual, method), gr.skip()]
        yield [gr.skip()] * 7 + [self.strip(explanation, class_idx, colormap, opacity, counterfactual, method)]

    @_user_errors
    def on_view(self, image, model_name, layer, class_idx, top_k, colormap, opacity, counterfactual, method="gradcam", request: gr.Request = None):
        """A layer change (or any view change, called directly): cached, no network pass."""
        if not image:
            return [None] * 5 + [gr.update(), gr.update()]
        explanation = self.explanation(image, model_name, top_k, _session(request))
        class_idx = explanation.top_classes[0] if class_idx is None else int(class_idx)
        return self.view_outputs(explanation, class_idx, layer, colormap, opacity, counterfactual, method)

    def view_outputs(self, explanation: Explanation, class_idx: int, layer, colormap, opacity, counterfactual, method) -> list:
        radio = class_idx if class_idx in explanation.top_classes else None
        pictures = self.view(explanation, class_idx, layer, colormap, opacity, counterfactual, method, PANEL_SIDE)
        heat_caption, guided_caption = self.captions(method)
        pictures[1], pictures[4] = {**heat_caption, "value": pictures[1]}, {**guided_caption, "value": pictures[4]}
        return [*pictures, radio, class_idx]

    def strip(self, explanation: Explanation, class_idx: int, colormap, opacity, counterfactual, method) -> list:
        """The layer1..layer4 strip: for a top-k class, as soon as the background has its gradients."""
        if class_idx in explanation.top_classes:
            self.completer.wait_until(explanation, lambda: explanation.stored(class_idx, stages=True))
        else:
            self.completer.wait(explanation)
        slow = class_idx not in explanation.top_classes or method in PERTURBATION_METHODS
        with self.scheduler.background() if slow else contextlib.nullcontext():
            return self.depth_strip(explanation, class_idx, colormap, opacity, counterfactual, method)

    @_user_errors
    def on_full_size(self, image, model_name, layer, class_idx, top_k, colormap, opacity, counterfactual, method="gradcam", request: gr.Request = None) -> dict:
        """The five panels at the upload's full (display-capped) resolution, as PNG files to download."""
        explanation = self.explanation(image, model_name, top_k, _session(request))
        class_idx = explanation.top_classes[0] if class_idx is None else int(class_idx)
        label = explanation.info.categories[class_idx].replace(" ", "_").replace("/", "_")
        pictures = self.view(explanation, class_idx, layer, colormap, opacity, counterfactual, method)
        names = [f"{n}-{title.lower().replace(' ', '-')}-{label}-layer{int(layer)}" for n, title in enumerate(PANEL_TITLES, start=1)]
        files = [cache_file(Path(path).read_bytes(), f"{name}.png") for path, name in zip(pictures, names)]
        return gr.update(value=files, visible=True)

    @_user_errors
    def on_depth(self, image, model_name, class_idx, top_k, colormap, opacity, counterfactual, method="gradcam", request: gr.Request = None):
        """The layer1..layer4 strip, once the background has the class's gradients (it yields to first views)."""
        if not image:
            return None
        explanation = self.explanation(image, model_name, top_k, _session(request))
        class_idx = explanation.top_classes[0] if class_idx is None else int(class_idx)
        return self.strip(explanation, class_idx, colormap, opacity, counterfactual, method)

    @_user_errors
    def on_compare(self, image, model_name, layer, class_idx, top_k, colormap, opacity, request: gr.Request = None, progress=gr.Progress()):
        """Every method side by side for the class and layer, scored by deletion and insertion."""
        explanation = self.explanation(image, model_name, top_k, _session(request))
        class_idx = explanation.top_classes[0] if class_idx is None else int(class_idx)
        done = []

        def report(method: str) -> None:
            progress(len(done) / len(METHODS), desc=f"{method_name(method)}…")
            done.append(method)

        with self.scheduler.background():  # many passes: other students' first views go first
            views = method_comparison(explanation, class_idx, layer, colormap=colormap, opacity=opacity, on_method=report)
        tiles = [
            (png_file(v.overlay), f"{method_name(v.method)} · del {v.faithfulness.deletion_auc:.3f} · ins {v.faithfulness.insertion_auc:.3f}")
            for v in views
        ]
        rows = [
            "| method | deletion AUC ↓ | insertion AUC ↑ | confidence drop ↓ |",
            "|---|---|---|---|",
            *(
                f"| {method_name(v.method)} | {v.faithfulness.deletion_auc:.3f} | {v.faithfulness.insertion_auc:.3f} | {v.faithfulness.average_drop:.1%} |"
                for v in views
            ),
        ]
        label = explanation.info.categories[class_idx]
        heading = f"**{label}** at layer{int(layer)}: a lower deletion and a higher insertion area mean a more faithful map."
        return tiles, heading + "\n\n" + "\n".join(rows), _curves(views, "deletion"), _curves(views, "insertion")

    @_user_errors
    def api_explain(self, image, model_name, layer, class_idx, top_k, request: gr.Request = None):
        """The documented /explain endpoint."""
        started = time.perf_counter()
        explanation = self.explanation(image, model_name, top_k, _session(request))
        class_idx = explanation.top_classes[0] if class_idx is None else int(class_idx)
        pictures = self.view(explanation, class_idx, layer, "jet", 0.5, False, "gradcam")
        status = self.status(explanation, model_name, time.perf_counter() - started)
        self.completer.submit(explanation)  # as the page does: the next layer or class is a cache hit
        return [*pictures, self.confidences(explanation), status]

    def layer_info(self, model_name: str) -> dict:
        """The slider's info line names the module and grid behind each position, for this model."""
        if model_name not in MODELS:
            return gr.update()
        stages = describe_stages(self.shelf.get(model_name))
        positions = " · ".join(f"{n} = {label}" for n, label in enumerate(stages, start=1))
        return gr.update(info=f"shallow, sharp (1) → deep, class-discriminative (4): {positions}")

    def on_unload(self, request: gr.Request) -> None:
        self.cache.drop_session(_session(request))
        self._precisions.pop(_session(request), None)


def _curves(views, curve: str) -> pd.DataFrame:
    """One long table of a curve for every method, as gr.LinePlot draws it."""
    return pd.DataFrame(
        [
            {"fraction of pixels": f, "class probability": p, "method": method_name(v.method)}
            for v in views
            for f, p in zip(v.faithfulness.fractions, getattr(v.faithfulness, curve))
        ]
    )


CSS = """
.panel-row .image-container img { object-fit: contain; }
.gradio-container label span, .gradio-container .label-wrap span { font-size: 1.05rem; }
#status { font-size: 1.05rem; }
#banner { border: 2px solid #d97706; border-radius: 8px; padding: 0 12px; background: rgba(217, 119, 6, 0.12); }
/* The strip's captions name modules such as encoder.layers.encoder_layer_11.ln_1: wrap, never cut. */
#depth .caption-label { white-space: normal; max-width: 96%; overflow-wrap: anywhere; }
""" + LIVE_CSS


def model_choices() -> list[tuple[str, str]]:
    """The dropdown's entries, each labelled with its family, e.g. "vit_b_16 · Vision Transformer"."""
    return [(f"{name} · {MODEL_FAMILIES[name]}", name) for name in MODELS]


def example_paths() -> list[list[str]]:
    folder = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets")
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith((".jpg", ".jpeg", ".png", ".webp")))
    return [[os.path.join(folder, n)] for n in names]


def build_demo(weights: str | None = None) -> gr.Blocks:
    """The page. ``weights`` defaults to $GRADCAM_WEIGHTS, else "imagenet" with a random fallback."""
    explorer = Explorer(weights or os.environ.get("GRADCAM_WEIGHTS", "imagenet"))
    categories = model_info(explorer.shelf.get(DEFAULT_MODEL)).categories
    with gr.Blocks(title=texts.TITLE, delete_cache=(3600, 3600)) as demo:
        demo.explorer = explorer
        gr.Markdown(texts.INTRO)
        banner = gr.Markdown(visible=False, elem_id="banner")
        with gr.Tabs(elem_id="tabs") as tabs:
            with gr.Tab("Explore", id="explore"):
                with gr.Row():
                    with gr.Column(scale=1, min_width=320):
                        image = UploadedImage(label="Your image", elem_id="upload", type="filepath", sources=["upload", "webcam", "clipboard"], format="png", height=300)
                        gr.Examples(example_paths(), inputs=[image], label="Examples (click one)", examples_per_page=8)
                        model = gr.Dropdown(model_choices(), value=DEFAULT_MODEL, label="Model", elem_id="model")
                        layer = gr.Slider(1, 4, value=4, step=1, label="Layer", elem_id="layer", info="1 = shallow: sharp, local · 4 = deep: coarse, class-discriminative")
                        top_k = gr.Slider(1, MAX_TOP_K, value=5, step=1, label="Top-k predictions")
                        method = gr.Dropdown(
                            [(method_name(m), m) for m in METHODS], value="gradcam", label="Method", info="Compare them all below, scored for faithfulness"
                        )
                        with gr.Accordion("More controls", open=False):
                            colormap = gr.Dropdown(list(COLORMAPS), value="jet", label="Colormap (cividis reads well with colour blindness)")
                            opacity = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label="Overlay opacity")
                            counterfactual = gr.Checkbox(value=False, label="Counterfactual: show what argues against the class")
                            precision = gr.Radio(
                                [(PRECISION_NAMES[p], p) for p in (("bfloat16", "float32") if DEFAULT_PRECISION == "bfloat16" else ("float32",))],
                                value=DEFAULT_PRECISION,
                                label="Precision",
                                info="bfloat16 runs the network faster where the processor does it natively; its maps agree with float32 to r ≥ 0.999",
                                elem_id="precision",
                            )
                    with gr.Column(scale=2):
                        status = gr.Markdown(elem_id="status")
                        predictions = gr.Label(label="Predictions", num_top_classes=MAX_TOP_K, elem_id="predictions")
                        top_class = gr.Radio(choices=[], label="Explain which prediction?", type="value", elem_id="top-class")
                        any_class = gr.Dropdown(
                            [(f"{i} · {name}", i) for i, name in enumerate(categories)],
                            value=None,
                            label="…or search any of the 1000 classes",
                            filterable=True,
                        )
                with gr.Row(elem_classes="panel-row", equal_height=True):
                    outputs = [
                        gr.Image(label=title, format="png", height=260, interactive=False, buttons=["fullscreen"], elem_id=f"panel-{n}")
                        for n, title in enumerate(PANEL_TITLES)
                    ]
                # Panels are drawn at display size (PANEL_SIDE); full resolution is made on demand.
                full_size = gr.Button("⬇ Full-resolution panels (PNG)", size="sm", elem_id="full-size")
                full_size_files = gr.File(label="Full-resolution panels", file_count="multiple", visible=False, interactive=False, elem_id="full-size-files")
                depth = gr.Gallery(label="The selected class at layer1 → layer4", elem_id="depth", columns=4, rows=1, height=300, format="png", object_fit="contain", interactive=False)
                with gr.Accordion("Compare methods: which explanation to trust?", open=False):
                    gr.Markdown(texts.COMPARE_HELP)
                    compare = gr.Button("Compare all methods for this class and layer", variant="primary")
                    comparison = gr.Gallery(label="Methods side by side", columns=4, rows=2, height=620, format="png", object_fit="contain", interactive=False, elem_id="comparison")
                    scores = gr.Markdown()
                    with gr.Row():
                        deletion = gr.LinePlot(x="fraction of pixels", y="class probability", color="method", title="Deletion: most salient pixels removed first (lower is better)", y_lim=[0, 1])
                        insertion = gr.LinePlot(x="fraction of pixels", y="class probability", color="method", title="Insertion: most salient pixels restored first (higher is better)", y_lim=[0, 1])
                # Imported here: demo.teaching imports this module's helpers.
                from demo.teaching import Controls, add_teaching_tools

                add_teaching_tools(explorer, Controls(image, model, layer, any_class, top_k, colormap, opacity, counterfactual, method))
                with gr.Accordion("What am I looking at?", open=False):
                    gr.Markdown(texts.HELP)
                api_trigger = gr.Button(visible=False)
            with gr.Tab("Live", id="live"):
                live_tab(demo, explorer.shelf, categories, image, tabs, network=explorer.scheduler.first_view, precision=DEFAULT_PRECISION)

        new_inputs = [image, model, layer, top_k, colormap, opacity, counterfactual, method]
        view_settings = [top_k, colormap, opacity, counterfactual, method]
        depth_inputs = [image, model, any_class, *view_settings]
        common = dict(concurrency_id="render", concurrency_limit=RENDER_CONCURRENCY, api_visibility="undocumented")
        network = dict(concurrency_id="network", concurrency_limit=NETWORK_EVENTS, api_visibility="undocumented")
        # The strip mostly waits for the background completion: its own group, so waiting strips
        # never hold the slots of first views or of cheap re-renders.
        strip = dict(concurrency_id="depth", concurrency_limit=DEPTH_EVENTS, api_visibility="undocumented")

        for trigger in (image.change, model.change, top_k.release):
            trigger(
                explorer.new_input_steps,
                new_inputs,
                [*outputs, predictions, top_class, any_class, status, banner],
                show_progress_on=outputs,
                **network,
            ).then(explorer.on_depth, depth_inputs, depth, **strip)
        precision.change(explorer.on_precision, [precision], None, **common).then(
            explorer.new_input_steps, new_inputs, [*outputs, predictions, top_class, any_class, status, banner], **network
        ).then(explorer.on_depth, depth_inputs, depth, **strip)

        view_outputs = [*outputs, top_class, any_class]
        layer.release(explorer.on_view, [image, model, layer, any_class, *view_settings], view_outputs, **common)
        # The strip changes too: one streamed event (panels, then strip), not a second round trip.
        for trigger, class_source in (
            (colormap.change, any_class),
            (opacity.release, any_class),
            (counterfactual.change, any_class),
            (method.change, any_class),
            (top_class.select, top_class),
            (any_class.input, any_class),
        ):
            trigger(explorer.view_and_strip, [image, model, layer, class_source, *view_settings], [*view_outputs, depth], **common)
        full_size.click(
            explorer.on_full_size, [image, model, layer, any_class, *view_settings], full_size_files, **common
        )
        # Files made for another view would mislead: any change hides them (no queue, no inputs).
        gr.on(
            [image.change, model.change, top_k.release, layer.release, colormap.change, opacity.release, counterfactual.change,
             method.change, top_class.select, any_class.input, precision.change],
            lambda: gr.update(value=None, visible=False), None, full_size_files, queue=False, api_visibility="undocumented",
        )

        api_trigger.click(
            explorer.api_explain,
            [image, model, layer, any_class, top_k],
            [*outputs, predictions, status],
            api_name="explain",
            api_description=texts.API_DESCRIPTION,
            concurrency_id="network",
            concurrency_limit=NETWORK_EVENTS,
        )
        compare.click(
            explorer.on_compare,
            [image, model, layer, any_class, top_k, colormap, opacity],
            [comparison, scores, deletion, insertion],
            concurrency_id="compare",
            concurrency_limit=NETWORK_CONCURRENCY,
            api_visibility="undocumented",
        )
        model.change(explorer.layer_info, [model], [layer], **common)
        demo.load(explorer.layer_info, [model], [layer], **common)
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
        ssr_mode=False,
        show_error=False,
    )
