"""The Gradio explorer page: layout and wiring over core."""

from demo.ui import Explorer, build_demo, launch_options

__all__ = ["Explorer", "build_demo", "launch_options"]
