"""Hugging Face Spaces entry point, and `python app.py` locally."""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# Before torch loads OpenMP: idle OpenMP threads sleep instead of spinning. With the server's other
# threads (and here the benchmark's browser) on the same two cores, spinning threads starved the
# pass that needed the core: live frames in Chromium, resnet18 5.0 -> 10.3 per second, resnet50
# 2.1 -> 6.2. It costs the explorer's first view about 6-9% (browser A/B, 6 students).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from demo import build_demo, launch_options  # noqa: E402

demo = build_demo()

if __name__ == "__main__":
    demo.queue(default_concurrency_limit=1).launch(**launch_options())
