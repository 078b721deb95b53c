"""The Explore tab's panels: one gr.HTML whose script (viewer.js) draws every view in the page.

The constants the script needs (colour tables, level bits, method names) are emitted from core
when the page is built, so the page and the server never hold two copies of a table.
"""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr

from core import COLORMAPS
from core.methods import GRADIENT_METHODS, METHODS, PERTURBATION_METHODS
from core.payload import GUIDED_BITS
from core.render import colormap_lut
from core.views import PANEL_TITLES
from demo.common import method_name

SCRIPT = Path(__file__).with_name("viewer.js")


def constants() -> dict:
    """What viewer.js reads from window.GRADCAM."""
    return {
        "colormaps": {name: colormap_lut(name).ravel().tolist() for name in COLORMAPS},
        "guidedBits": GUIDED_BITS,
        "methodNames": {m: method_name(m) for m in METHODS},
        "counterfactualMethods": list(GRADIENT_METHODS),
        "perturbationMethods": list(PERTURBATION_METHODS),
    }


def _figure(n: int, title: str, title_class: str = "") -> str:
    return (
        f'<figure class="viewer-panel" id="viewer-panel-{n}"><figcaption class="{title_class}">{title}</figcaption>'
        f'<canvas role="img" aria-label="{title}: upload an image first" width="1" height="1"></canvas></figure>'
    )


TEMPLATE = (
    '<div class="viewer">'
    '<p class="viewer-status" role="status" aria-live="polite"></p>'
    '<div class="viewer-panels">'
    + "".join(_figure(n, title, ("", "viewer-title-heat", "", "", "viewer-title-guided")[n]) for n, title in enumerate(PANEL_TITLES))
    + '</div><p class="viewer-strip-title">The selected class at layer1 → layer4 (click any panel to enlarge it)</p><div class="viewer-strip">'
    + "".join(_figure(5 + n, f"layer{n + 1}") for n in range(4))
    + "</div></div>"
)

CSS = """
.viewer-panels, .viewer-strip { display: grid; gap: 8px; }
.viewer-panels { grid-template-columns: repeat(5, minmax(0, 1fr)); }
.viewer-strip { grid-template-columns: repeat(4, minmax(0, 1fr)); }
.viewer figure { margin: 0; cursor: zoom-in; }
.viewer figcaption { font-size: 0.95rem; overflow-wrap: anywhere; }
.viewer canvas { width: 100%; height: auto; max-height: 260px; object-fit: contain; display: block; }
.viewer canvas.viewer-waiting { background: repeating-linear-gradient(45deg, rgba(127,127,127,.15) 0 8px, transparent 8px 16px); min-height: 120px; }
.viewer figure.viewer-enlarged { grid-column: 1 / -1; cursor: zoom-out; }
.viewer figure.viewer-enlarged canvas { max-height: none; }
.viewer-status { min-height: 1.4em; margin: 0 0 6px; }
"""


class ViewerHTML(gr.HTML):
    """gr.HTML whose value, a payload (core.payload), travels as one JSON string.

    As an object, the page's framework deep-copied it and wrapped every field of it in a
    reactive proxy: about 140 ms of the page's main thread per first view, before the viewer
    could read it. A string is copied whole and parsed once (viewer.js).
    """

    def postprocess(self, value: dict | str | None) -> str | None:
        return json.dumps(value, separators=(",", ":")) if isinstance(value, dict) else super().postprocess(value)


def viewer_component() -> gr.HTML:
    """The panels and the layer strip, drawn in the page from the payload it is given as value."""
    head = f"<script>window.GRADCAM = {json.dumps(constants())};\n{SCRIPT.read_text()}</script>"
    return ViewerHTML(
        value=None,
        html_template=TEMPLATE,
        css_template=CSS,
        js_on_load="window.GradcamViewer.mount(element, props, watch, trigger);",
        head=head,
        elem_id="viewer",
        padding=False,
    )
