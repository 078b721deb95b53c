"""Live mode: Grad-CAM of one webcam frame at a time, fast enough to watch.

Per frame, :func:`explain_frame` does the minimum:

1. the decoded frame (RGB uint8) is shrunk once, to the live input size (short side
   :data:`LIVE_SHORT_SIDE`); the overlay is drawn on that same small picture;
2. one forward pass through the model's twin (:func:`core.forward.twin_for`). At layer4 of a
   network whose head is global average pooling and a Linear layer, ∂y_c/∂A4 has a closed form
   (the class's weight row spread over the grid), so the pass runs under ``torch.no_grad`` and no
   backward pass runs at all. At any other stage, or for another head, one
   ``torch.autograd.grad`` of the chosen class's logit with respect to that one stage's output;
3. the Grad-CAM map from those activations and gradients, exactly as ``Explanation.cam`` makes it
   (``core.methods.gradcam``, then upsampling and [0, 1] scaling);
4. the overlay, a label band with the class and its probability, and a JPEG.

Nothing is cached between frames beyond what core already keeps (the twin, the colormap tables,
the fonts): a frame's tensors are a few hundred kilobytes, the allocator reuses their memory, and
the soak test checks that the resident size stays flat over a long stream.

The shared model is never touched: the twin is a private copy, gradients come from
``torch.autograd.grad`` on tensors held here, and no hook is ever installed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from core.engine import PRECISIONS, stage_index
from core.forward import ReluRule, twin_for
from core.intake import BadImageError, letterbox_box, model_input_size, read_image, to_model_input
from core.methods import gradcam
from core.record import normalise01, over_picture
from core.render import DEFAULT_COLORMAP, encode_jpeg, label_bar, overlay, text_card
from core.weights import model_info

#: The short side of the live input. 224 is what the networks were trained at; the live view
#: shows the overlay at this size too, which the browser scales up.
LIVE_SHORT_SIDE = 224
#: Wide frames (16:9 webcams) keep their aspect up to twice the short side.
LIVE_MAX_LONG_SIDE = 2 * LIVE_SHORT_SIDE
#: JPEG quality of the live overlay: ~15 KB a frame at 299×224, artefacts invisible at 80.
JPEG_QUALITY = 80


@dataclass(frozen=True)
class LiveFrame:
    """One explained frame.

    overlay:     RGB uint8 (h, w, 3) at the live size, label band drawn unless asked not to
    cam01:       the Grad-CAM map over the same picture, float32 (h, w) in [0, 1]
    jpeg:        the overlay encoded as JPEG, or None when not asked for
    timings_ms:  prepare (shrink, normalise), network (forward, and backward where needed),
                 map (Grad-CAM, upsampling), render (overlay, label, JPEG), total
    """

    overlay: np.ndarray
    cam01: np.ndarray
    class_index: int
    label: str
    probability: float
    pinned: bool
    layer: int
    stage: str
    closed_form: bool
    input_size: tuple[int, int]  # (width, height) of the tensor the network saw
    jpeg: bytes | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)


def frame_picture(frame: Any) -> Image.Image:
    """The frame as an upright RGB image, or a BadImageError that says what went wrong."""
    if frame is None:
        raise BadImageError("No camera frame arrived. Is the camera on, and did the browser allow it?")
    try:
        return read_image(frame)
    except BadImageError as err:
        raise BadImageError(f"This camera frame cannot be used: {err}") from err


def explain_frame(
    model: nn.Module,
    frame: Any,
    layer: int | str = 4,
    class_idx: int | None = None,
    *,
    colormap: str = DEFAULT_COLORMAP,
    opacity: float = 0.5,
    short_side: int = LIVE_SHORT_SIDE,
    label: bool = True,
    encode: bool = True,
    precision: str = "float32",
) -> LiveFrame:
    """Grad-CAM of ``model`` on one frame, for the top-1 class or the pinned ``class_idx``.

    ``precision`` is "float32" (exact) or "bfloat16" (the fast twin under autocast), as in
    :func:`core.explain`.

    ``frame`` is a decoded picture (an HxWx3 uint8 array as Gradio's webcam gives it, or anything
    :func:`core.read_image` takes). Raises BadImageError for an unusable frame, ValueError for an
    unknown layer, class or colormap; the caller decides what the viewer sees instead.
    """
    started = time.perf_counter()
    index = stage_index(layer)
    info = model_info(model)
    num_classes = len(info.categories)
    if class_idx is not None and not (isinstance(class_idx, (int, np.integer)) and 0 <= class_idx < num_classes):
        raise ValueError(f"class must be an integer from 0 to {num_classes - 1}, not {class_idx!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    picture = frame_picture(frame)
    fast = precision == "bfloat16"
    twin = twin_for(model, info.input_size, fold=fast)
    # The picture the overlay is drawn on is also the picture the network sees (letterboxed into
    # its square for ViT and MaxViT), so the map needs no cropping unless the input is square.
    shown = picture.resize(model_input_size(*picture.size, short_side, 2 * short_side), Image.Resampling.BILINEAR)
    x = to_model_input(shown, info.mean, info.std, short_side, 2 * short_side, square=twin.fixed_input).to(twin.device)
    prepared = time.perf_counter()

    closed_form = index == 3 and twin.fc_weight is not None
    if closed_form:
        with torch.no_grad(), torch.autocast(twin.device.type, dtype=torch.bfloat16, enabled=fast):
            grids, logits = twin.forward(x, ReluRule())
        chosen = _chosen_class(logits, class_idx)
        activations = grids[3].detach()[0].float().cpu()
        gradients = twin.closed_form_layer4_gradient(chosen, activations.shape)
    else:
        x.requires_grad_(True)  # the twin's parameters need no gradient, so the graph starts here
        with torch.enable_grad(), torch.autocast(twin.device.type, dtype=torch.bfloat16, enabled=fast):
            grids, logits = twin.forward(x, ReluRule())
            chosen = _chosen_class(logits, class_idx)
            (grad,) = torch.autograd.grad(logits[0, chosen], grids[index])
        activations = grids[index].detach()[0].float().cpu()
        gradients = grad[0].float().cpu()
    probability = float(torch.softmax(logits.detach()[0].double().cpu(), dim=0)[chosen])
    del grids, logits
    networked = time.perf_counter()

    cam_raw = torch.nan_to_num(gradcam(activations, gradients), nan=0.0, posinf=0.0, neginf=0.0)
    input_size = (int(x.shape[-1]), int(x.shape[-2]))
    cam01 = normalise01(over_picture(cam_raw[None], shown.size, input_size, None if twin.fixed_input is None else letterbox_box(*shown.size, twin.fixed_input))[0]).numpy()
    mapped = time.perf_counter()

    label_name = info.categories[chosen]
    picture_out = overlay(shown, cam01, colormap, opacity)
    if label:
        picture_out = label_bar(picture_out, caption(label_name, probability, index + 1, pinned=class_idx is not None))
    jpeg = encode_jpeg(picture_out, JPEG_QUALITY) if encode else None
    done = time.perf_counter()
    timings = {
        "prepare": prepared - started,
        "network": networked - prepared,
        "map": mapped - networked,
        "render": done - mapped,
        "total": done - started,
    }
    return LiveFrame(
        overlay=picture_out,
        cam01=cam01,
        class_index=chosen,
        label=label_name,
        probability=probability,
        pinned=class_idx is not None,
        layer=index + 1,
        stage=twin.stages[index],
        closed_form=closed_form,
        input_size=input_size,
        jpeg=jpeg,
        timings_ms={k: v * 1e3 for k, v in timings.items()},
    )


def caption(label: str, probability: float, layer: int, *, pinned: bool = False) -> str:
    """"tabby · 43.2% · layer4", marked "pinned" when the class was chosen rather than the top-1.

    The layer is on the frame itself so that a room watching a projector knows what it sees.
    """
    return f"{'pinned: ' if pinned else ''}{label} · {probability:.1%} · layer{layer}"


def notice_frame(message: str, size: tuple[int, int] = (LIVE_MAX_LONG_SIDE * 2 // 3, LIVE_SHORT_SIDE)) -> np.ndarray:
    """What the live view shows instead of an overlay: the message, on a card of the live size."""
    return text_card(message, size)


def _chosen_class(logits: Tensor, class_idx: int | None) -> int:
    return int(logits.detach()[0].argmax()) if class_idx is None else int(class_idx)
