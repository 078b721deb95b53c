"""The Live tab: Grad-CAM on the webcam, frame after frame, for a classroom.

The browser streams webcam frames with Gradio's own streaming event (``gr.Image(sources=
["webcam"], streaming=True).stream``): it sends a frame, waits for the overlay to come back, and
sends the newest frame at the next tick after that. So at most one frame per viewer is in flight,
the latest frame always wins, and latency cannot grow over time. Each frame goes to
:func:`core.live.explain_frame`; this module only maps widgets to it and back, keeps per-viewer
figures, caps the number of live streams, and turns every problem into words on the page.

What speeds the stream up, measured with a fake camera in Chromium (see benchmarks/live.py):

* the overlay goes back as a JPEG data URL inside the event message, not as a file the browser
  must then fetch (one round trip less per frame);
* the overlay is the small picture the network saw (224 px short side), ~15 KB a frame;
* ``stream_every`` is short, so a new frame leaves soon after the previous overlay arrived;
* the webcam is asked for 640×480 rather than Gradio's default 1920×1440, so the browser encodes,
  and the server decodes, a quarter of the pixels or less.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Callable, ContextManager, Iterator

import gradio as gr
import numpy as np
from gradio.data_classes import ImageData

from core import COLORMAPS, MODELS, BadImageError, ModelLoadError
from core.live import LIVE_SHORT_SIDE, explain_frame, notice_frame
from core.render import encode_jpeg
from core.weights import model_info
from demo import texts
from demo.common import session_of
from core.settings import positive_setting
from demo.language import tr, words_for

log = logging.getLogger(__name__)

#: Live streams served at once. On a 2-vCPU machine two streams each get about half the frame
#: rate of one; a third would make all of them too slow to feel live. $GRADCAM_LIVE_STREAMS
#: overrides it (a positive integer).
LIVE_STREAMS_ENV = "GRADCAM_LIVE_STREAMS"
DEFAULT_LIVE_STREAMS = 2
#: Viewers beyond the cap still get an event of their own, so that they can be told in words
#: (and let in as soon as a stream ends) instead of waiting silently in Gradio's queue.
REFUSED_VIEWERS = 8
#: A stream stops after this long; the viewer starts it again with the record button.
TIME_LIMIT_S = 600
#: How often the browser may send a frame. It sends only when the previous overlay is back, so
#: this is a ceiling (20 fps), not a rate: shorter only means less idle time between frames.
STREAM_EVERY_S = 0.05
#: A stream that sent no frame for this long has ended (tab closed, camera stopped).
IDLE_S = 5.0
#: Refused and paused viewers are answered this slowly, so their frames cost almost nothing.
SLOW_ANSWER_S = 0.5
#: How often the readout (frames per second, latency) is redrawn: every frame would only flicker.
READOUT_EVERY_S = 0.5
#: Frame rates are measured over this window.
RATE_WINDOW_S = 3.0
DEFAULT_LIVE_MODEL = "resnet18"
TOP_1 = -1  # the class pin's "follow the top-1 prediction" choice

#: The overlay fills its box whatever the window (a projector, a phone): Gradio would otherwise
#: show the 299×224 frame at its own size.
LIVE_CSS = """
#live-overlay .image-container, #live-overlay .image-frame { width: 100%; height: 100%; }
#live-overlay img { width: 100%; height: 100%; object-fit: contain; }
#live-readout { font-size: 1.05rem; min-height: 3.2em; }
"""


def live_streams(environ: dict[str, str] | os._Environ = os.environ) -> int:
    """The cap on concurrent live streams: $GRADCAM_LIVE_STREAMS, else DEFAULT_LIVE_STREAMS."""
    cap = positive_setting(environ, LIVE_STREAMS_ENV, int, "a positive integer")
    return DEFAULT_LIVE_STREAMS if cap is None else cap


class LiveImage(gr.Image):
    """An output image sent inside the event message as a JPEG data URL.

    A plain gr.Image writes each frame to a file that the browser then fetches: one more round
    trip per frame. Lossy is right here, and only here: the live view changes 10 times a second.
    """

    is_template = True  # the browser draws it with gr.Image's own front end

    def postprocess(self, value: Any) -> ImageData | None:
        if value is None or isinstance(value, ImageData):
            return value
        jpeg = value if isinstance(value, bytes) else encode_jpeg(np.asarray(value))
        return ImageData(url="data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii"), mime_type="image/jpeg")


@dataclass
class Viewer:
    """One browser session's live stream: its last frame, its rate, and whether it is paused."""

    last_seen: float = 0.0
    in_flight: bool = False  # a frame of this viewer is being explained
    last_frame: np.ndarray | None = None
    paused: bool = False
    served: deque = field(default_factory=lambda: deque(maxlen=64))  # completion times
    server_ms: deque = field(default_factory=lambda: deque(maxlen=16))
    last_readout: float = 0.0

    def frames_per_second(self, now: float) -> float:
        recent = [t for t in self.served if now - t <= RATE_WINDOW_S]
        if len(recent) < 2:
            return 0.0
        return (len(recent) - 1) / max(recent[-1] - recent[0], 1e-6)


class LiveStreams:
    """The viewers with a live stream, at most ``cap`` of them served at once.

    A viewer holds a place while frames keep coming; one silent for IDLE_S has ended its stream
    (Gradio says nothing to the server when a tab closes mid-stream), so its place goes to the
    next viewer who asks. Thread-safe.
    """

    def __init__(self, cap: int, idle_s: float = IDLE_S, clock=time.monotonic) -> None:
        if cap < 1:
            raise ValueError(f"the live stream cap must be at least 1, not {cap}")
        self.cap = cap
        self.idle_s = idle_s
        self._clock = clock
        self._viewers: dict[str, Viewer] = {}
        self._lock = threading.Lock()

    def admit(self, session: str) -> Viewer | None:
        """The session's Viewer if it may stream now, None while the cap is reached by others."""
        now = self._clock()
        with self._lock:
            self._forget_idle(now)
            viewer = self._viewers.get(session)
            if viewer is None:
                if self._active(now) >= self.cap:
                    return None
                viewer = self._viewers[session] = Viewer()
            viewer.last_seen = now
            return viewer

    @contextlib.contextmanager
    def serving(self, viewer: Viewer) -> Iterator[None]:
        """A frame in flight: its viewer is not silent, however long the pass takes (a twin being
        built on a loaded machine took longer than IDLE_S, and the stream lost its place)."""
        viewer.in_flight = True
        try:
            yield
        finally:
            with self._lock:
                viewer.in_flight = False
                viewer.last_seen = self._clock()

    def get(self, session: str) -> Viewer | None:
        with self._lock:
            return self._viewers.get(session)

    def drop(self, session: str) -> None:
        with self._lock:
            self._viewers.pop(session, None)

    def active(self) -> int:
        with self._lock:
            return self._active(self._clock())

    def _active(self, now: float) -> int:
        return sum(v.in_flight or now - v.last_seen <= self.idle_s for v in self._viewers.values())

    def _forget_idle(self, now: float) -> None:
        # A paused viewer keeps its frame (the Explore tab may still want it) for a while longer.
        for session, viewer in list(self._viewers.items()):
            if not viewer.in_flight and now - viewer.last_seen > (60 * self.idle_s if viewer.paused else self.idle_s):
                del self._viewers[session]


class LiveView:
    """The Live tab's handlers and the server-side state they share."""

    def __init__(
        self, shelf: Any, cap: int | None = None, network: Callable[[], ContextManager] | None = None, precision: str = "float32"
    ) -> None:
        self.shelf = shelf
        self.precision = precision  # the page's: bfloat16 where the CPU does it natively
        self.streams = LiveStreams(live_streams() if cap is None else cap)
        # A live frame is a pass someone is watching. Given the page's scheduler (its first_view),
        # frames queue with the explorer's first views and background work yields to them; alone,
        # frames run one at a time: two passes at once on two vCPUs only slow each other down.
        self._network = network or _one_at_a_time(threading.Lock())

    def on_frame(self, frame, model_name, layer, pin, colormap, opacity, request: gr.Request = None):
        """One webcam frame in, one overlay and (twice a second) the readout out. Never raises."""
        session = session_of(request)
        viewer = self.streams.admit(session)
        if viewer is None:
            time.sleep(SLOW_ANSWER_S)
            message = words_for(request).LIVE_FULL.format(cap=self.streams.cap)
            return notice_frame(message), f"**{message}**"
        if viewer.paused:
            time.sleep(SLOW_ANSWER_S)
            return gr.skip(), gr.skip()
        started = time.monotonic()
        try:
            if model_name not in MODELS:
                raise ValueError(f"unknown model {model_name!r}; choose one of {', '.join(MODELS)}")
            class_idx = None if pin is None or int(pin) == TOP_1 else int(pin)
            # The model within the memory budget first, then the network gate (see demo.explore.Explorer.network).
            with self.streams.serving(viewer), self.shelf.lease(model_name) as model, self._network():
                result = explain_frame(model, frame, int(layer), class_idx, colormap=colormap, opacity=float(opacity), precision=self.precision)
        except (BadImageError, ModelLoadError, ValueError) as err:
            return notice_frame(str(err)), f"**{err}**"
        except Exception as err:  # noqa: BLE001 - a stream must outlive any one bad frame
            log.exception("live frame failed")
            message = words_for(request).LIVE_FRAME_FAILED.format(error=type(err).__name__)
            return notice_frame(message), f"**{message}**"
        now = time.monotonic()
        viewer.last_frame = frame
        viewer.served.append(now)
        viewer.server_ms.append(result.timings_ms["total"])
        readout = gr.skip()
        if now - viewer.last_readout >= READOUT_EVERY_S:
            viewer.last_readout = now
            readout = self.readout(viewer, result, model, model_name, now, (now - started) * 1e3, words_for(request))
        return result.jpeg, readout

    def readout(self, viewer: Viewer, result, model, model_name: str, now: float, handler_ms: float, words: ModuleType = texts) -> str:
        fps = viewer.frames_per_second(now)
        interval = f"{1000 / fps:.0f} ms" if fps > 0 else "…"
        width, height = result.input_size
        return words.LIVE_READOUT.format(
            fps=f"{fps:.1f}",
            interval=interval,
            server=f"{float(np.median(viewer.server_ms)):.0f}",
            network=f"{result.timings_ms['network']:.0f}",
            model=model_name,
            layer=result.layer,
            stage=result.stage,
            how=words.LIVE_CLOSED_FORM if result.closed_form else words.LIVE_BACKWARD,
            width=width,
            height=height,
            precision=self.precision,
            untrained="" if model_info(model).trained else words.LIVE_UNTRAINED,
        )

    def on_pause(self, request: gr.Request = None):
        """Freezes the live view and hands its last frame to the Explore tab's image."""
        viewer = self.streams.get(session_of(request))
        if viewer is None or viewer.last_frame is None:
            gr.Warning(words_for(request).LIVE_NOTHING_TO_PAUSE)
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        viewer.paused = True
        return viewer.last_frame, gr.Tabs(selected="explore"), gr.Button(visible=False), gr.Button(visible=True)

    def on_resume(self, request: gr.Request = None):
        viewer = self.streams.get(session_of(request))
        if viewer is not None:
            viewer.paused = False
        return gr.Button(visible=True), gr.Button(visible=False)

    def on_unload(self, request: gr.Request) -> None:
        self.streams.drop(session_of(request))

    def intro(self, request: gr.Request = None) -> str:
        """The tab's introduction with this server's figures, in the browser's language."""
        return words_for(request).LIVE_INTRO.format(side=LIVE_SHORT_SIDE, cap=self.streams.cap, minutes=TIME_LIMIT_S // 60)


def _one_at_a_time(lock: threading.Lock) -> Callable[[], ContextManager]:
    return lambda: lock


def live_tab(
    demo: gr.Blocks,
    shelf: Any,
    categories: list[str],
    explore_image: gr.Image,
    tabs: gr.Tabs,
    network: Callable[[], ContextManager] | None = None,
    precision: str = "float32",
) -> LiveView:
    """The Live tab's contents, built inside the current gr.Tab; returns its handlers.

    ``network`` is the gate every live frame's pass goes through (the page's
    ``NetworkScheduler.first_view``); without it, live frames take turns among themselves.
    ``precision`` is the one every frame is explained in.
    """
    view = LiveView(shelf, network=network, precision=precision)
    intro = gr.Markdown(view.intro())
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            camera = gr.Image(
                label=tr("LIVE_CAMERA_LABEL"),
                sources=["webcam"],
                streaming=True,
                type="numpy",
                height=240,
                elem_id="live-camera",
                webcam_options=gr.WebcamOptions(constraints={"video": {"width": {"ideal": 640}, "height": {"ideal": 480}}}),
            )
            model = gr.Dropdown(list(MODELS), value=DEFAULT_LIVE_MODEL if DEFAULT_LIVE_MODEL in MODELS else MODELS[0], label=tr("MODEL_LABEL"), elem_id="live-model", info=tr("LIVE_MODEL_INFO"))
            layer = gr.Slider(1, 4, value=4, step=1, label=tr("LAYER_LABEL"), elem_id="live-layer", info=tr("LIVE_LAYER_INFO"))
            pin = gr.Dropdown(
                [(tr("LIVE_TOP_1"), TOP_1), *((f"{i} · {name}", i) for i, name in enumerate(categories))],
                value=TOP_1,
                label=tr("LIVE_CLASS_LABEL"),
                info=tr("LIVE_CLASS_INFO"),
                filterable=True,
                elem_id="live-class",
            )
            with gr.Row():
                colormap = gr.Dropdown(list(COLORMAPS), value="jet", label=tr("LIVE_COLORMAP_LABEL"), elem_id="live-colormap")
                opacity = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label=tr("LIVE_OPACITY_LABEL"), elem_id="live-opacity")
            pause = gr.Button(tr("LIVE_PAUSE"), variant="primary", elem_id="live-pause")
            resume = gr.Button(tr("LIVE_RESUME"), visible=False, elem_id="live-resume")
        with gr.Column(scale=2):
            overlay = LiveImage(label=tr("LIVE_OVERLAY_LABEL"), interactive=False, height="60vh", elem_id="live-overlay", buttons=["fullscreen"])
            readout = gr.Markdown(tr("LIVE_WAITING"), elem_id="live-readout")
    with gr.Accordion(tr("LIVE_CAMERA_TROUBLE"), open=False):
        gr.Markdown(tr("LIVE_CAMERA_HELP"))

    camera.stream(
        view.on_frame,
        [camera, model, layer, pin, colormap, opacity],
        [overlay, readout],
        stream_every=STREAM_EVERY_S,
        time_limit=TIME_LIMIT_S,
        concurrency_limit=view.streams.cap + REFUSED_VIEWERS,
        concurrency_id="live",
        show_progress="hidden",
        api_visibility="undocumented",
    )
    pause.click(view.on_pause, None, [explore_image, tabs, pause, resume], api_visibility="undocumented")
    resume.click(view.on_resume, None, [pause, resume], api_visibility="undocumented")
    demo.load(view.intro, None, intro, queue=False, api_visibility="private")
    demo.unload(view.on_unload)
    return view
