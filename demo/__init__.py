"""The Gradio explorer page: layout and wiring over core."""

from demo.explore import Explorer
from demo.ui import build_demo, launch_options

__all__ = ["Explorer", "build_demo", "launch_options"]
