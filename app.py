"""Hugging Face Spaces entry point, and `python app.py` locally."""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from demo import build_demo, launch_options  # noqa: E402

demo = build_demo()

if __name__ == "__main__":
    demo.queue(default_concurrency_limit=1).launch(**launch_options())
