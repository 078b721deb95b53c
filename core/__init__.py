"""Grad-CAM explorer core: models, image intake, the explanation engine and rendering.

Torch, numpy, Pillow (and OpenCV's colormap tables) only: no Gradio.
"""

from core.engine import PRECISIONS, Explanation, Prediction, describe_stages, explain, native_bfloat16
from core.faithfulness import Faithfulness
from core.intake import BadImageError, read_image
from core.localise import Box, localise
from core.methods import METHODS
from core.occlusion import HideAndSee, hide_and_see
from core.render import COLORMAPS
from core.sanity import SanityResult, sanity_check
from core.weights import (
    MODELS,
    BadCheckpointError,
    ModelInfo,
    ModelLoadError,
    WeightsUnavailableError,
    load_model,
    model_info,
)

__all__ = [
    "COLORMAPS",
    "METHODS",
    "PRECISIONS",
    "MODELS",
    "BadCheckpointError",
    "BadImageError",
    "Box",
    "Explanation",
    "Faithfulness",
    "HideAndSee",
    "ModelInfo",
    "ModelLoadError",
    "Prediction",
    "SanityResult",
    "WeightsUnavailableError",
    "describe_stages",
    "explain",
    "hide_and_see",
    "localise",
    "native_bfloat16",
    "load_model",
    "model_info",
    "read_image",
    "sanity_check",
]
