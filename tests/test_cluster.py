"""The explainer on a Ray cluster: two replicas on two simulated one-CPU nodes
(``ray.cluster_utils.Cluster``), reached the way the page reaches them (demo.remote, over Serve's
HTTP proxy). Each answer must equal, piece for piece, what the embedded explainer computes, under
a burst, while a replica is killed, and after the cluster is gone.

The cluster takes ~10 s to come up (~40 s on a loaded machine), so one serves the whole module;
the tests that need it are marked ``cluster``, and the README's test command runs them.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import gradio as gr
import pytest
import torch
import yaml

ray = pytest.importorskip("ray", reason="the cluster tests need requirements-cluster.txt (in requirements-dev.txt)")
from ray import serve  # noqa: E402
from ray.serve import Application  # noqa: E402
from ray.cluster_utils import Cluster  # noqa: E402
from ray.serve.schema import ServeDeploySchema  # noqa: E402

from cluster.deployment import ExplainerDeployment, build  # noqa: E402
from core import explain, load_model, read_image  # noqa: E402
from core.service import class_piece, completed_pieces, first_piece, prepare  # noqa: E402
from demo.explore import Explorer  # noqa: E402
from demo.remote import ClusterExplainer, ClusterRoute, ClusterUnavailable  # noqa: E402
from tests.imagefactory import noise, truncated_jpeg  # noqa: E402

MODEL = "resnet18"
SIDE = 640
TOP_K = 3
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pictures() -> list:
    """Four small pictures of different shapes: different inputs, and quick passes."""
    return [read_image(noise(w, h, seed=s)) for s, (w, h) in enumerate([(160, 120), (120, 160), (144, 144), (200, 100)])]


@contextlib.contextmanager
def one_thread():
    """As a one-CPU replica runs (Ray sets its OMP_NUM_THREADS): with more threads, float sums
    add up in another order and guided backprop's spread differs in its last bits."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def embedded(picture, name: str, method: str = "gradcam") -> list[dict]:
    """The pieces that the embedded explainer's code computes for the picture."""
    with one_thread():
        explanation = explain(load_model(MODEL, weights="random"), picture, top_k=TOP_K, lazy=True, top_class_guided=False)
        return [first_piece(explanation, name, method, SIDE), *completed_pieces(explanation, name, method, SIDE)]


@pytest.fixture(scope="module")
def cluster_url():
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        port = free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(ExplainerDeployment.options(num_replicas=2).bind("random"), name="gradcam", route_prefix="/gradcam")
        yield f"http://127.0.0.1:{port}/gradcam"
    finally:
        serve.shutdown()
        ray.shutdown()
        cluster.shutdown()


@pytest.fixture(scope="module")
def references():
    return [embedded(p, f"picture-{n}") for n, p in enumerate(pictures())]


def with_key(pieces: list[dict], key: str) -> list[dict]:
    return [{**piece, "key": key} for piece in pieces]


def replicas() -> list:
    names = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if "Explainer" in a["name"] and "REPLICA" in a["name"]]
    return [ray.get_actor(name, namespace="serve") for name in names]


@pytest.mark.cluster
def test_twenty_concurrent_first_views_equal_the_embedded_ones(cluster_url, references):
    remote = ClusterExplainer(cluster_url)
    shots = pictures()

    def ask(n: int) -> list[dict]:
        return list(remote.first(shots[n % 4], MODEL, TOP_K, "float32", "gradcam", 4, SIDE, f"request-{n}"))

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(ask, range(20)))
    for n, answer in enumerate(answers):
        assert [p["key"] for p in answer] == [f"request-{n}"] * (1 + 2 * TOP_K)  # each answer is its own request's
        assert with_key(answer, "x") == with_key(references[n % 4], "x"), f"request {n} differs from the embedded explainer"


@pytest.mark.cluster
def test_a_class_outside_the_top_k_and_another_method(cluster_url):
    picture = pictures()[0]
    remote = ClusterExplainer(cluster_url)
    with one_thread():
        explanation = explain(load_model(MODEL, weights="random"), picture, top_k=TOP_K, lazy=True)
        outside = next(c for c in range(1000) if c not in explanation.top_classes)
        prepare(explanation, [outside])
        expected = class_piece(explanation, "outside", outside, "gradcam++", SIDE)
    assert remote.classes(picture, MODEL, TOP_K, "float32", "gradcam++", [outside], SIDE, "outside") == expected


@pytest.mark.cluster
def test_a_request_the_cluster_cannot_serve_is_refused_in_words(cluster_url):
    remote = ClusterExplainer(cluster_url)
    with pytest.raises(ValueError, match="nosuchnet"):
        next(remote.first(pictures()[0], "nosuchnet", TOP_K, "float32", "gradcam", 4, SIDE, "bad"))
    with pytest.raises(ValueError, match="method"):
        next(remote.first(pictures()[0], MODEL, TOP_K, "float32", "nosuchcam", 4, SIDE, "bad"))


@pytest.mark.cluster
def test_a_replica_killed_in_a_burst_loses_no_request(cluster_url, references):
    remote = ClusterExplainer(cluster_url)
    shots = pictures()
    started = threading.Event()

    def ask(n: int) -> list[dict]:
        pieces = []
        for piece in remote.first(shots[n % 4], MODEL, TOP_K, "float32", "gradcam", 4, SIDE, f"burst-{n}"):
            started.set()
            pieces.append(piece)
        return pieces

    with ThreadPoolExecutor(20) as pool:
        futures = [pool.submit(ask, n) for n in range(20)]
        assert started.wait(120)
        victim = replicas()[0]
        ray.kill(victim, no_restart=False)  # Serve starts a new one; meanwhile the other answers
        answers = [f.result(timeout=300) for f in futures]
    assert remote.retries >= 1, "no request was in flight on the killed replica: the test proved nothing"
    for n, answer in enumerate(answers):
        assert [p["key"] for p in answer] == [f"burst-{n}"] * (1 + 2 * TOP_K)
        assert with_key(answer, "x") == with_key(references[n % 4], "x")


def page(url: str, *, fallback: bool = False, attempts: int = 4) -> Explorer:
    return Explorer("random", ClusterRoute(ClusterExplainer(url, attempts=attempts, backoff_s=0.05), fallback=fallback))


def first_and_rest(explorer: Explorer, path: str, session: str) -> tuple[list, list[dict]]:
    request = gr.Request(session_hash=session)
    answer = explorer.on_new_input(path, MODEL, TOP_K, "gradcam", request=request)
    return answer, list(explorer.on_rest(path, MODEL, TOP_K, "gradcam", request=request))


@pytest.fixture
def photo(tmp_path) -> str:
    path = tmp_path / "photo.png"
    noise(300, 200, seed=11).save(path)
    return str(path)


@pytest.mark.cluster
def test_the_page_on_the_cluster_sends_what_the_embedded_page_sends(cluster_url, photo):
    remote_answer, remote_rest = first_and_rest(page(cluster_url), photo, "on-the-cluster")
    embedded = Explorer("random")
    with one_thread():
        answer, rest = first_and_rest(embedded, photo, "embedded")
        assert embedded.completer.join(120)
    assert remote_answer[0] == answer[0]  # the first view's payload, byte for byte
    assert remote_rest == rest
    assert remote_answer[1:4] == answer[1:4]  # predictions, class choices, the class on screen
    assert remote_answer[4].split(" · ")[:-1] == answer[4].split(" · ")[:-1]  # the status line but its timing


def test_a_bad_image_is_refused_in_the_page_before_any_call_to_the_cluster(tmp_path):
    explorer = page("http://127.0.0.1:9/gradcam")  # nothing listens there: a call would fail otherwise
    sent = []
    explorer.cluster.explainer._client.event_hooks["request"].append(sent.append)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(truncated_jpeg(keep=0.3))
    with pytest.raises(gr.Error, match="(?i)image|truncated|read"):
        explorer.on_new_input(str(broken), MODEL, TOP_K, "gradcam", request=gr.Request(session_hash="bad"))
    assert sent == []


def test_the_cluster_gone_the_page_says_so_and_keeps_serving(photo):
    gone = f"http://127.0.0.1:{free_port()}/gradcam"
    with pytest.raises(gr.Error, match="did not answer") as caught:
        page(gone, attempts=2).on_new_input(photo, MODEL, TOP_K, "gradcam", request=gr.Request(session_hash="gone"))
    assert gone in str(caught.value)


def test_the_cluster_gone_the_page_falls_back_when_told_to(photo):
    explorer = page(f"http://127.0.0.1:{free_port()}/gradcam", fallback=True, attempts=2)
    answer, rest = first_and_rest(explorer, photo, "fallback")
    assert [p["index"] for p in answer[0]["predictions"]] == [c for _, c in answer[2]["choices"]]
    assert "did not answer" in answer[4] and "explained by the page's own server" in answer[4]
    classes = [p["index"] for p in answer[0]["predictions"]]
    assert [list(piece["guided"]) for piece in rest[::2]] == [[str(c)] for c in classes]
    assert [list(piece["maps"]) for piece in rest[1::2]] == [[f"gradcam/{c}/0", f"gradcam/{c}/1"] for c in classes]


def test_the_config_file_is_a_valid_serve_config_that_builds():
    config = yaml.safe_load((ROOT / "cluster" / "serve.yaml").read_text())
    (application,) = ServeDeploySchema.model_validate(config).applications
    assert application.import_path == "cluster.deployment:build"
    (deployment,) = application.deployments
    assert deployment.name == "Explainer"
    assert deployment.ray_actor_options.num_cpus == 1 and deployment.ray_actor_options.num_gpus == 0
    assert 1 <= deployment.autoscaling_config["min_replicas"] <= deployment.autoscaling_config["max_replicas"]
    assert isinstance(build(application.args), Application)


@pytest.mark.cluster
def test_the_cluster_gone_is_said_in_words(cluster_url):
    remote = ClusterExplainer(cluster_url, attempts=2, backoff_s=0.1)
    assert next(remote.first(pictures()[0], MODEL, TOP_K, "float32", "gradcam", 4, SIDE, "before"))["key"] == "before"
    serve.shutdown()  # the module's last test: the proxy and the replicas go
    started = time.perf_counter()
    with pytest.raises(ClusterUnavailable, match="did not answer"):
        next(remote.first(pictures()[0], MODEL, TOP_K, "float32", "gradcam", 4, SIDE, "after"))
    assert time.perf_counter() - started < 30
