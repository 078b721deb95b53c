"""A fake webcam for Chromium and the code that watches the Live tab through it.

Shared by tests/test_live.py (loose floors) and benchmarks/live.py (the figures):

* ``write_clip`` writes a small ``.y4m`` clip (a bright square moving on a dark background) that
  Chromium plays as its camera with ``--use-file-for-fake-video-capture``.
* ``launch_with_camera`` starts headless Chromium on such a clip, camera permission granted.
* ``open_live`` loads the app, opens the Live tab and starts the stream.
* ``count_frames`` counts the distinct overlay frames that reach the page in a time window.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script, or imported by the tests
from common import CHROMIUM_FLAGS  # noqa: E402

# The same flags as the explorer's browser test, plus the fake camera.
BASE_FLAGS = [
    *CHROMIUM_FLAGS,
    # A hidden or background page would throttle its timers, and the stream with them.
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
]
CAMERA_FLAGS = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]

#: The camera, the live overlay's <img> and the readout, by the element ids demo/live.py gives them.
CAMERA = "#live-camera"
OVERLAY = "#live-overlay img"
READOUT = "#live-readout"
TIMEOUT_MS = 60_000


def _rgb_to_i420(rgb: np.ndarray) -> bytes:
    """BT.601 limited-range Y, U, V planes (U and V subsampled 2×2), as y4m's C420 wants."""
    r, g, b = (rgb[..., i].astype(np.float32) for i in range(3))
    y = 16 + 0.257 * r + 0.504 * g + 0.098 * b
    u = 128 - 0.148 * r - 0.291 * g + 0.439 * b
    v = 128 + 0.439 * r - 0.368 * g - 0.071 * b
    sub = lambda plane: plane.reshape(plane.shape[0] // 2, 2, plane.shape[1] // 2, 2).mean(axis=(1, 3))  # noqa: E731
    planes = [y, sub(u), sub(v)]
    return b"".join(np.clip(np.rint(p), 0, 255).astype(np.uint8).tobytes() for p in planes)


def clip_frames(n: int, width: int, height: int, colour: tuple[int, int, int], moving: bool = True) -> list[np.ndarray]:
    """A square of ``colour`` going once round the picture over n frames (or still), on dark grey."""
    side = height // 3
    frames = []
    for i in range(n):
        t = 2 * np.pi * i / n if moving else 0.0
        x = int((width - side) * (0.5 + 0.4 * np.cos(t)))
        y = int((height - side) * (0.5 + 0.4 * np.sin(t)))
        frame = np.full((height, width, 3), 40, np.uint8)
        frame[y : y + side, x : x + side] = colour
        frames.append(frame)
    return frames


def write_clip(
    path: Path,
    *,
    colour: tuple[int, int, int] = (255, 255, 255),
    moving: bool = True,
    width: int = 640,
    height: int = 480,
    fps: int = 30,
    seconds: float = 2.0,
) -> Path:
    """Writes a looping y4m clip Chromium can use as its camera; returns the path.

    A still clip (``moving=False``) makes every frame the same, so the overlay changes only
    when a setting does.
    """
    return write_y4m(path, clip_frames(max(2, round(fps * seconds)), width, height, colour, moving), fps)


def write_y4m(path: Path, frames: list[np.ndarray], fps: int = 30) -> Path:
    """Writes RGB uint8 frames (even width and height) as a y4m clip; returns the path."""
    height, width = frames[0].shape[:2]
    with open(path, "wb") as file:
        file.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            file.write(b"FRAME\n")
            file.write(_rgb_to_i420(frame))
    return path


def launch_with_camera(playwright: Any, executable: str, clip: Path) -> Any:
    """Headless Chromium whose camera plays ``clip``."""
    return playwright.chromium.launch(
        executable_path=executable,
        args=[*BASE_FLAGS, *CAMERA_FLAGS, f"--use-file-for-fake-video-capture={clip}"],
    )


def open_live(browser: Any, url: str, *, viewport: tuple[int, int] = (1400, 1000), color_scheme: str = "light") -> Any:
    """A new page on the app's Live tab with the stream running (first overlay shown)."""
    context = browser.new_context(
        viewport={"width": viewport[0], "height": viewport[1]}, color_scheme=color_scheme, permissions=["camera"]
    )
    page = context.new_page()
    page.goto(url + ("?__theme=dark" if color_scheme == "dark" else ""))
    page.get_by_role("tab", name="Live").click()
    camera = page.locator(CAMERA)
    camera.get_by_role("button", name="Click to Access Webcam").click()
    camera.get_by_label("capture photo").click()  # Gradio's record button starts the stream
    wait_for_overlay(page)
    return page


def overlay_source(page: Any) -> str:
    return page.eval_on_selector(OVERLAY, "img => img.src") if page.query_selector(OVERLAY) else ""


def wait_for_overlay(page: Any, different_from: str = "") -> str:
    page.wait_for_function(
        "([sel, old]) => { const i = document.querySelector(sel); return i && i.src && i.src !== old && i.complete && i.naturalWidth > 0; }",
        arg=[OVERLAY, different_from],
        timeout=TIMEOUT_MS,
    )
    return overlay_source(page)


# Counts every change of the overlay's src in the page itself, so that no frame is missed
# between two polls from Python.
_WATCH = """
sel => {
  window.__live = { count: 0, last: null, sizes: [] };
  const tick = () => {
    const img = document.querySelector(sel);
    if (img && img.src && img.src !== window.__live.last) {
      window.__live.last = img.src;
      window.__live.count += 1;
    }
    window.__live.raf = requestAnimationFrame(tick);
  };
  tick();
}
"""


@dataclass(frozen=True)
class FrameCount:
    frames: int
    seconds: float

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def count_frames(page: Any, seconds: float) -> FrameCount:
    """Distinct overlay frames (changes of the <img> source) that reached the page in ``seconds``."""
    page.evaluate(_WATCH, OVERLAY)
    start = page.evaluate("() => window.__live.count")
    started = time.perf_counter()
    page.wait_for_timeout(seconds * 1000)
    end = page.evaluate("() => { cancelAnimationFrame(window.__live.raf); return window.__live.count; }")
    return FrameCount(end - start, time.perf_counter() - started)


def overlay_pixels(page: Any) -> np.ndarray:
    """The overlay currently shown, decoded, as an RGB uint8 array."""
    import base64
    import io

    from PIL import Image

    src = overlay_source(page)
    if src.startswith("data:"):
        data = base64.b64decode(src.split(",", 1)[1])
    else:
        data = page.request.get(src).body()
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def wait_until_served(page: Any) -> None:
    """Until the readout shows a frame rate: this viewer's frames are being explained (not refused)."""
    page.wait_for_function("sel => (document.querySelector(sel)?.innerText || '').includes('frames/s')", arg=READOUT, timeout=TIMEOUT_MS)


def set_number(page: Any, elem_id: str, value: float) -> None:
    """Types into a slider's number box, which Gradio reads on the stream's next frame."""
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Tab")


def choose_option(page: Any, selector: str, name: str) -> None:
    """Picks the option ``name`` in the Gradio dropdown at ``selector`` (typing filters the list)."""
    box = page.locator(f"{selector} input")
    box.click()
    box.fill(name)
    page.get_by_role("option", name=name).first.click()
