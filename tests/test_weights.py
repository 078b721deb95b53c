"""Tests for core.weights: registry, official-file and checkpoint loading, errors, cache, CLI.

No test needs the network: official weights are faked by writing a random state_dict where
torchvision would keep the real file, inside a per-test TORCH_HOME.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request

import pytest
import torch
import torchvision

from core import weights as W


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """A fresh, empty torch cache and model cache for every test."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.delenv("GRADCAM_OFFLINE", raising=False)
    W.clear_cache()
    yield
    W.clear_cache()


@pytest.fixture
def no_network():
    """Skip when the weights server is reachable: these tests check the offline failure path."""
    try:
        W._probe(W.default_weights("resnet18").url)
    except OSError:
        return
    pytest.skip("network is available; the no-network path cannot be exercised")


@pytest.fixture
def build_counter(monkeypatch):
    """Counts real architecture builds (one per uncached load)."""
    calls = []
    real_build = W._build

    def counting_build(name, num_classes):
        calls.append(name)
        time.sleep(0.05)  # widen the window in which concurrent loaders could race
        return real_build(name, num_classes)

    monkeypatch.setattr(W, "_build", counting_build)
    return calls


def random_state_dict(name="resnet18", num_classes=1000):
    torch.manual_seed(0)
    return torchvision.models.get_model(name, weights=None, num_classes=num_classes).state_dict()


def assert_same_tensors(model, state_dict):
    loaded = model.state_dict()
    assert loaded.keys() == state_dict.keys()
    for key, tensor in state_dict.items():
        assert torch.equal(loaded[key], tensor), key


# --------------------------------------------------------------------------- registry


@pytest.mark.parametrize("name", W.MODELS)
def test_each_model_has_official_weights_file(name):
    enum = torchvision.models.get_model_weights(name).DEFAULT
    assert W.default_weights(name) is enum
    assert W.checkpoint_path(name).name == enum.url.rsplit("/", 1)[-1]
    # e.g. resnet50-11ad3fa6.pth; efficientnet_b0's file names its origin: efficientnet_b0_rwightman-7f5810bc.pth
    assert W.checkpoint_path(name).name.startswith(name)


def test_resnet50_uses_v2_weights():
    assert W.default_weights("resnet50").name == "IMAGENET1K_V2"
    assert W.checkpoint_path("resnet50").name == "resnet50-11ad3fa6.pth"


def test_checkpoint_path_honours_torch_home(tmp_path):
    assert W.checkpoint_path("resnet18") == tmp_path / "torch_home" / "hub" / "checkpoints" / "resnet18-f37072fd.pth"


def test_unknown_model_name_lists_choices():
    with pytest.raises(ValueError, match="resnet50.*resnext50_32x4d"):
        W.load_model("vgg16", "random")


@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50"])
def test_random_models_build_in_eval_mode_on_cpu(name):
    model = W.load_model(name, "random", device="cpu")
    assert not model.training
    assert all(p.device.type == "cpu" for p in model.parameters())
    info = W.model_info(model)
    assert info.trained is False
    assert info.weights == "random init (untrained)"
    assert info.name == name
    assert len(info.categories) == 1000
    assert info.mean == W.IMAGENET_MEAN and info.std == W.IMAGENET_STD


def test_default_device():
    model = W.load_model("resnet18", "random")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert next(model.parameters()).device.type == expected


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_imagenet_labels(name):
    categories = W.load_model(name, "random", device="cpu").gradcam_info.categories
    assert len(categories) == 1000
    assert categories[281] == "tabby"
    assert categories[254] == "pug"


def test_load_model_leaves_grads_and_hooks_alone():
    model = W.load_model("resnet18", "random", device="cpu")
    assert all(p.requires_grad for p in model.parameters())
    for module in model.modules():
        assert not module._forward_hooks
        assert not module._forward_pre_hooks
        assert not module._backward_hooks
        assert not module._backward_pre_hooks


# --------------------------------------------------------------------------- official weights


def test_missing_official_weights_fail_fast_without_network(no_network):
    start = time.monotonic()
    with pytest.raises(W.WeightsUnavailableError) as caught:
        W.load_model("resnet18", "imagenet", device="cpu")
    assert time.monotonic() - start < 5
    message = str(caught.value)
    assert "resnet18-f37072fd.pth" in message
    assert str(W.checkpoint_path("resnet18").parent) in message
    assert "python -m core.weights download resnet18" in message
    assert W.cached_models() == []


def test_offline_mode_never_touches_the_network(monkeypatch):
    monkeypatch.setenv("GRADCAM_OFFLINE", "1")

    def forbidden(*args, **kwargs):
        raise AssertionError("network used in offline mode")

    monkeypatch.setattr(urllib.request, "urlopen", forbidden)
    with pytest.raises(W.WeightsUnavailableError) as caught:
        W.load_model("resnet50", "imagenet", device="cpu")
    message = str(caught.value)
    assert "resnet50-11ad3fa6.pth" in message
    assert str(W.checkpoint_path("resnet50").parent) in message
    assert "python -m core.weights download resnet50" in message


def test_unreachable_server_is_reported_not_downloaded(monkeypatch):
    def unreachable(*args, **kwargs):
        raise urllib.error.URLError("simulated outage")

    monkeypatch.setattr(urllib.request, "urlopen", unreachable)
    with pytest.raises(W.WeightsUnavailableError, match="simulated outage"):
        W.load_model("resnet18", "imagenet", device="cpu")
    assert not W.checkpoint_path("resnet18").exists()


def test_cached_official_file_is_loaded_exactly():
    state_dict = random_state_dict()
    path = W.checkpoint_path("resnet18")
    path.parent.mkdir(parents=True)
    torch.save(state_dict, path)
    model = W.load_model("resnet18", "imagenet", device="cpu")
    assert_same_tensors(model, state_dict)
    info = W.model_info(model)
    assert info.trained is True
    assert "IMAGENET1K_V1" in info.weights
    assert info.categories[281] == "tabby"


def test_corrupt_official_file_suggests_redownload():
    path = W.checkpoint_path("resnet18")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(W.BadCheckpointError) as caught:
        W.load_model("resnet18", "imagenet", device="cpu")
    message = str(caught.value)
    assert path.name in message
    assert "Delete" in message and "python -m core.weights download resnet18" in message


# --------------------------------------------------------------------------- local checkpoints


def test_checkpoint_file_is_loaded_exactly(tmp_path):
    state_dict = random_state_dict()
    path = tmp_path / "mine.pth"
    torch.save(state_dict, path)
    model = W.load_model("resnet18", path, device="cpu")
    assert_same_tensors(model, state_dict)
    info = W.model_info(model)
    assert info.trained is True
    assert info.weights == "checkpoint mine.pth"
    assert info.categories[254] == "pug"


@pytest.mark.parametrize(
    "wrap",
    [
        lambda sd: {"module." + k: v for k, v in sd.items()},
        lambda sd: {"state_dict": sd, "epoch": 3},
        lambda sd: {"model": {"module." + k: v for k, v in sd.items()}},
    ],
    ids=["dataparallel", "state_dict-key", "model-key-dataparallel"],
)
def test_wrapped_checkpoints(tmp_path, wrap):
    state_dict = random_state_dict()
    path = tmp_path / "wrapped.pth"
    torch.save(wrap(state_dict), path)
    assert_same_tensors(W.load_model("resnet18", str(path), device="cpu"), state_dict)


def test_other_class_count_gets_numbered_labels(tmp_path):
    path = tmp_path / "seven.pth"
    torch.save(random_state_dict(num_classes=7), path)
    model = W.load_model("resnet18", path, device="cpu")
    assert model.fc.out_features == 7
    assert W.model_info(model).categories == tuple(f"class {i}" for i in range(7))


def test_labels_file(tmp_path):
    path = tmp_path / "three.pth"
    torch.save(random_state_dict(num_classes=3), path)
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\nbird\n")
    model = W.load_model("resnet18", path, labels=labels, device="cpu")
    assert W.model_info(model).categories == ("cat", "dog", "bird")


def test_labels_file_with_wrong_count(tmp_path):
    path = tmp_path / "three.pth"
    torch.save(random_state_dict(num_classes=3), path)
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\n")
    with pytest.raises(W.BadCheckpointError, match="2 labels.*3 classes"):
        W.load_model("resnet18", path, labels=labels, device="cpu")


def test_wrong_architecture(tmp_path):
    path = tmp_path / "r18.pth"
    torch.save(random_state_dict("resnet18"), path)
    with pytest.raises(W.BadCheckpointError) as caught:
        W.load_model("resnet50", path, device="cpu")
    message = str(caught.value)
    assert "r18.pth" in message and "resnet50" in message
    assert "missing" in message and "wrong shape" in message
    assert len(message) < 1000


def test_random_bytes_file(tmp_path):
    path = tmp_path / "noise.pth"
    path.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(W.BadCheckpointError, match="noise.pth"):
        W.load_model("resnet18", path, device="cpu")


def test_truncated_checkpoint(tmp_path):
    path = tmp_path / "cut.pth"
    torch.save(random_state_dict(), path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(W.BadCheckpointError, match="cut.pth"):
        W.load_model("resnet18", path, device="cpu")


class Payload:
    """An arbitrary object; weights_only loading must refuse to unpickle it."""


def test_arbitrary_pickle_is_refused(tmp_path):
    path = tmp_path / "pickle.pth"
    torch.save({"fc.weight": Payload()}, path)
    with pytest.raises(W.BadCheckpointError, match="pickle.pth"):
        W.load_model("resnet18", path, device="cpu")


def test_dict_without_tensors_is_not_a_state_dict(tmp_path):
    path = tmp_path / "meta.pth"
    torch.save({"epoch": 3, "lr": 0.1}, path)
    with pytest.raises(W.BadCheckpointError, match="not a model state_dict"):
        W.load_model("resnet18", path, device="cpu")


def test_missing_checkpoint_file(tmp_path):
    with pytest.raises(W.WeightsUnavailableError, match="No such checkpoint file"):
        W.load_model("resnet18", tmp_path / "absent.pth", device="cpu")


# --------------------------------------------------------------------------- cache


def test_same_key_returns_same_object(build_counter):
    first = W.load_model("resnet18", "random", device="cpu")
    assert W.load_model("resnet18", "random", device="cpu") is first
    assert build_counter == ["resnet18"]
    assert W.load_model("resnet34", "random", device="cpu") is not first


def test_resaved_checkpoint_is_a_new_entry(tmp_path):
    path = tmp_path / "mine.pth"
    torch.save(random_state_dict(num_classes=2), path)
    first = W.load_model("resnet18", path, device="cpu")
    torch.save(random_state_dict(num_classes=4), path)
    second = W.load_model("resnet18", path, device="cpu")
    assert second is not first and second.fc.out_features == 4


def test_lru_eviction(tmp_path, build_counter):
    paths = []
    for i in range(W.CACHE_SIZE):
        paths.append(tmp_path / f"ck{i}.pth")
        torch.save(random_state_dict(num_classes=2), paths[-1])
    models = [W.load_model("resnet18", p, device="cpu") for p in paths]
    assert W.load_model("resnet18", paths[0], device="cpu") is models[0]  # now most recent
    W.load_model("resnet18", "random", device="cpu")  # evicts paths[1], the least recent
    assert len(W.cached_models()) == W.CACHE_SIZE
    assert W.load_model("resnet18", paths[0], device="cpu") is models[0]
    assert W.load_model("resnet18", paths[2], device="cpu") is models[2]
    builds_before = len(build_counter)
    assert W.load_model("resnet18", paths[1], device="cpu") is not models[1]
    assert len(build_counter) == builds_before + 1


def test_concurrent_first_loads_load_once(build_counter):
    threads_n = 8
    barrier = threading.Barrier(threads_n)
    results = [None] * threads_n

    def worker(i):
        barrier.wait()
        results[i] = W.load_model("resnet18", "random", device="cpu")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert build_counter == ["resnet18"]
    assert results[0] is not None
    assert all(r is results[0] for r in results)


def test_failed_load_is_not_cached(monkeypatch, build_counter):
    real_build = W._build
    failures = [RuntimeError("simulated build failure")]

    def flaky_build(name, num_classes):
        if failures:
            raise failures.pop()
        return real_build(name, num_classes)

    monkeypatch.setattr(W, "_build", flaky_build)
    with pytest.raises(RuntimeError, match="simulated"):
        W.load_model("resnet18", "random", device="cpu")
    assert W.cached_models() == []
    model = W.load_model("resnet18", "random", device="cpu")
    assert W.load_model("resnet18", "random", device="cpu") is model
    assert len(W.cached_models()) == 1


def test_clear_cache():
    W.load_model("resnet18", "random", device="cpu")
    assert len(W.cached_models()) == 1
    W.clear_cache()
    assert W.cached_models() == []


# --------------------------------------------------------------------------- model_info


def test_model_info_of_plain_imagenet_resnet():
    info = W.model_info(torchvision.models.resnet18())
    assert info.name == "ResNet"
    assert info.weights == "unknown"
    assert info.categories[281] == "tabby" and len(info.categories) == 1000
    assert info.mean == W.IMAGENET_MEAN and info.std == W.IMAGENET_STD


def test_model_info_of_plain_small_resnet():
    info = W.model_info(torchvision.models.resnet18(num_classes=5))
    assert info.categories == ("class 0", "class 1", "class 2", "class 3", "class 4")


# --------------------------------------------------------------------------- command line


def test_cli_where(capsys):
    path = W.checkpoint_path("resnet18")
    path.parent.mkdir(parents=True)
    torch.save(random_state_dict(), path)
    assert W.main(["where"]) == 0
    out = capsys.readouterr().out
    assert str(path.parent) in out
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert "resnet50-11ad3fa6.pth" in lines["resnet50"] and "missing" in lines["resnet50"]
    assert "resnet18-f37072fd.pth" in lines["resnet18"] and "present" in lines["resnet18"]


def test_cli_download_without_network(capsys, no_network):
    start = time.monotonic()
    assert W.main(["download", "resnet18"]) != 0
    assert time.monotonic() - start < 10
    err = capsys.readouterr().err
    assert err.startswith("resnet18: ")
    assert "resnet18-f37072fd.pth" in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_cli_download_reports_each_model(capsys, monkeypatch):
    def unreachable(*args, **kwargs):
        raise urllib.error.URLError("simulated outage")

    monkeypatch.setattr(urllib.request, "urlopen", unreachable)
    cached = W.checkpoint_path("resnet18")
    cached.parent.mkdir(parents=True)
    torch.save(random_state_dict(), cached)
    assert W.main(["download", "resnet18", "resnet34"]) == 1
    captured = capsys.readouterr()
    assert captured.out.strip() == f"resnet18: {cached}"
    assert captured.err.startswith("resnet34: ") and len(captured.err.strip().splitlines()) == 1


def test_cli_download_needs_models(capsys):
    with pytest.raises(SystemExit):
        W.main(["download"])
    assert "at least one model" in capsys.readouterr().err


def test_cli_download_rejects_unknown_model(capsys):
    with pytest.raises(SystemExit):
        W.main(["download", "vgg16"])
    assert "vgg16" in capsys.readouterr().err


def test_cli_download_all(capsys, monkeypatch):
    monkeypatch.setenv("GRADCAM_OFFLINE", "1")  # the CLI ignores it: downloading is its job
    attempted = []
    monkeypatch.setattr(W, "_download", lambda name: attempted.append(name) or {})
    assert W.main(["download", "--all"]) == 0
    assert attempted == list(W.MODELS)
    assert len(capsys.readouterr().out.splitlines()) == len(W.MODELS)


def test_random_weights_are_the_same_network_on_every_load():
    """An evicted untrained model must come back identical, or cached maps would disagree."""
    torch.manual_seed(123)
    expected_draw = torch.rand(3)
    torch.manual_seed(123)
    first = W.load_model("resnet18", "random", device="cpu")
    assert torch.equal(torch.rand(3), expected_draw), "the caller's random stream is left alone"
    W.clear_cache()
    second = W.load_model("resnet18", "random", device="cpu")
    assert first is not second
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values()):
        assert torch.equal(a, b), name
    other = W.load_model("resnet34", "random", device="cpu")
    assert not torch.equal(other.conv1.weight, first.conv1.weight)
