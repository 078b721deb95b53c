"""Hugging Face Spaces entry point, and `python app.py` locally.

    python app.py                                      # explains in this process
    python app.py --ray http://HEAD:8000/gradcam       # first views on a Ray cluster (docs/cluster.md)
    python app.py --ray http://HEAD:8000/gradcam --ray-fallback   # ...and here when it is gone
"""

import argparse
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# Before torch loads OpenMP: idle OpenMP threads sleep instead of spinning. With the server's other
# threads (and here the benchmark's browser) on the same two cores, spinning threads starved the
# pass that needed the core: live frames in Chromium, resnet18 5.0 -> 10.3 per second, resnet50
# 2.1 -> 6.2. It costs the explorer's first view about 6-9% (browser A/B, 6 students).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from demo import build_demo, launch_options  # noqa: E402
from demo.remote import CLUSTER_URL_ENV, FALLBACK_ENV  # noqa: E402

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="The Grad-CAM explorer page.")
    parser.add_argument("--ray", metavar="URL", help=f"the explainer's Serve address on a Ray cluster (or ${CLUSTER_URL_ENV})")
    parser.add_argument("--ray-fallback", action="store_true", help=f"explain here when the cluster does not answer (or ${FALLBACK_ENV}=1)")
    flags = parser.parse_args()
    if flags.ray:
        os.environ[CLUSTER_URL_ENV] = flags.ray
    if flags.ray_fallback:
        os.environ[FALLBACK_ENV] = "1"

demo = build_demo()

if __name__ == "__main__":
    demo.queue(default_concurrency_limit=1).launch(**launch_options())
