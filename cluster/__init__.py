"""The explainer as a Ray Serve deployment (optional: ``pip install -r requirements-cluster.txt``)."""
