"""What every feature of the page shares: its sizes and limits, the session id, the one place
where core's typed errors and the page's own become messages in the browser's language, and the
model and example choices."""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
from typing import Callable, Iterable

import gradio as gr

from core import BadImageError, ModelLoadError, native_bfloat16
from core.methods import METHOD_INFO
from core.weights import MODEL_FAMILIES, MODELS
from demo import texts
from demo.language import words_for
from core.scheduler import HANDLERS, network_concurrency

DEFAULT_MODEL = "resnet50"
#: Uploads are explained and shown at most this large: the model sees ≤448 px anyway.
DISPLAY_SIDE = 640
#: The page draws its panels and strip this large (a panel is ~260 CSS px high): a third of the
#: pixels of a 640 px panel to compute, send and draw. The API and the "full resolution" button
#: give DISPLAY_SIDE.
PANEL_SIDE = 384
MAX_TOP_K = 10
#: Network passes at once: 1 on a 2-vCPU Space (one pass saturates both), one per 4 cores beyond,
#: or $GRADCAM_NETWORK_CONCURRENCY (see core.scheduler).
NETWORK_CONCURRENCY = network_concurrency()
#: Events that may run the network enter their handler this many at a time; the scheduler, not
#: Gradio's queue, then orders their passes, so it sees every waiting first view.
NETWORK_EVENTS = 8 * NETWORK_CONCURRENCY
#: Server-side pictures from a cached Explanation (downloads, the API) are cheap numpy and PNG work.
RENDER_CONCURRENCY = 4
#: Events that mostly wait for a background completion (the rest of the top-k for the page).
WAITING_EVENTS = 16

#: The page's maps: bfloat16 where the hardware does it natively (faster; every map r ≥ 0.998 against
#: float32, see core.engine), exact float32 otherwise. "More controls" switches it per session.
DEFAULT_PRECISION = "bfloat16" if native_bfloat16() else "float32"
#: The precisions' names: constants of demo.texts (and of each language beside it).
PRECISION_TEXTS = {"bfloat16": "PRECISION_FAST", "float32": "PRECISION_EXACT"}
PRECISION_NAMES = {precision: getattr(texts, name) for precision, name in PRECISION_TEXTS.items()}


class PageError(Exception):
    """A mistake in the request that the page itself explains: ``name`` is a sentence of
    demo.texts, filled in with ``fields``, said in the browser's language."""

    def __init__(self, name: str, **fields: object) -> None:
        super().__init__(name)
        self.name = name
        self.fields = fields

    def say(self, words) -> str:
        return getattr(words, self.name).format(**self.fields)


def slot_waiting(progress: gr.Progress | None) -> Callable[[int], None] | None:
    """What the page says while its model waits for room in the memory budget (core.admission)."""
    if progress is None:
        return None
    return lambda ahead: progress(0.05, desc=texts.MODEL_SLOT_WAIT.format(ahead=ahead) if ahead else texts.MODEL_SLOT_NEXT)


def user_errors(handler: Callable) -> Callable:
    """The one place where core's typed errors and the page's own become messages in the browser.

    The page's sentences and the titles are in the browser's language; core's explanations
    (why an image or a model failed) stay in English, as core writes them."""

    @contextlib.contextmanager
    def translated(request: gr.Request | None):
        try:
            with HANDLERS():  # counted, so that the process lets it end before exiting
                yield
        except PageError as err:
            words = words_for(request)
            raise gr.Error(err.say(words), title=words.CANNOT_EXPLAIN) from err
        except (BadImageError, ModelLoadError) as err:
            raise gr.Error(str(err), title=words_for(request).CANNOT_EXPLAIN) from err
        except ValueError as err:
            raise gr.Error(words_for(request).INVALID_REQUEST.format(reason=err)) from err

    def request_in(args, kwargs) -> gr.Request | None:
        return next((a for a in (*args, *kwargs.values()) if isinstance(a, gr.Request)), None)

    if inspect.isgeneratorfunction(handler):  # Gradio streams a generator's yields: wrap it as one

        @functools.wraps(handler)
        def streamed(*args, **kwargs):
            with translated(request_in(args, kwargs)):
                yield from handler(*args, **kwargs)

        return streamed

    @functools.wraps(handler)
    def wrapped(*args, **kwargs):
        with translated(request_in(args, kwargs)):
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


def session_of(request: gr.Request | None) -> str:
    return (request.session_hash if request is not None else None) or "direct-call"


def method_name(method: str) -> str:
    """The method's display name, e.g. "Grad-CAM++", from the first words of its description."""
    return METHOD_INFO[method].split(":")[0]


def model_choices() -> list[tuple[str, str]]:
    """The dropdown's entries, each labelled with its family, e.g. "vit_b_16 · Vision Transformer"."""
    return [(f"{name} · {MODEL_FAMILIES[name]}", name) for name in MODELS]


def example_paths() -> list[list[str]]:
    folder = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets")
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith((".jpg", ".jpeg", ".png", ".webp")))
    return [[os.path.join(folder, n)] for n in names]
