"""bioimage.io model packages as plugins: the project's exported network is previewed, installed through a
real hub, run from a client and in a workflow with typed ports, and verified against its own test tensors;
damaged or unsupported packages are refused with the reason."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
import zipfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import HubProcess, start_hub, stop_hub
from scopeflow.cli.export_model import export_model
from scopeflow.images import formats
from scopeflow.plugins.bioimageio_runtime import to_model_axes, to_port_axes
from scopeflow.plugins.model_packages import PackageError, read_package
from scopeflow.rpc.client import connect
from scopeflow.workflows.verify import label_f1


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    target = tmp_path_factory.mktemp("package") / "nuclei.zip"
    export_model("nuclei-segmentation", target)
    return target.read_bytes()


def rewritten(package: bytes, change=None, extra: dict[str, bytes] | None = None, drop: str = "") -> bytes:
    """The package with its rdf changed by ``change(rdf)``, files added or one dropped."""
    source = zipfile.ZipFile(io.BytesIO(package))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            if name == drop:
                continue
            data = source.read(name)
            if name == "rdf.yaml" and change is not None:
                rdf = yaml.safe_load(data)
                change(rdf)
                data = yaml.safe_dump(rdf).encode()
            target.writestr(name, data)
        for name, data in (extra or {}).items():
            target.writestr(name, data)
    return out.getvalue()


def test_the_exported_package_reads_with_typed_ports(package: bytes) -> None:
    read = read_package(package)
    assert read.plugin_id == "bioimageio-scopeflow-nuclei-segmentation"
    assert read.input.axes == "yx" and [p.axes for p in read.outputs] == ["cyx"]
    assert read.weights == ["torchscript", "pytorch_state_dict"]
    preview = read.preview()
    assert "class UNet" in preview["code"]  # the architecture is code: the user sees it before trusting
    assert "bioimageio.core==0.11.0" in preview["requirements"] and "torch==2.13.0" in preview["requirements"]


def set_format(rdf: dict) -> None:
    rdf["format_version"] = "0.4.10"


def two_inputs(rdf: dict) -> None:
    rdf["inputs"] = rdf["inputs"] * 2


def remote_weights(rdf: dict) -> None:
    rdf["weights"]["torchscript"]["source"] = "https://example.org/weights.pt"


def odd_axis(rdf: dict) -> None:
    rdf["inputs"][0]["axes"][2] = {"type": "index", "id": "i"}


def keras_only(rdf: dict) -> None:
    rdf["weights"] = {"keras_hdf5": {"source": "weights.h5"}}


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: b"not a zip", "not a zip"),
        (lambda p: rewritten(p, drop="rdf.yaml"), "no rdf.yaml"),
        (lambda p: rewritten(p, set_format), "format 0.5"),
        (lambda p: rewritten(p, two_inputs), "one input"),
        (lambda p: rewritten(p, remote_weights), "nothing is downloaded"),
        (lambda p: rewritten(p, odd_axis), "has no image axis"),
        (lambda p: rewritten(p, keras_only), "no weights this hub can run"),
        (lambda p: rewritten(p, drop="weights.pt"), "missing"),
        (lambda p: rewritten(rewritten(p, drop="unet.py"), extra={"unet.py": b"import os\n"}), "sha256"),
        (lambda p: rewritten(p, extra={"../escape.txt": b"x"}), "outside"),
    ],
)
def test_bad_packages_are_refused_with_the_reason(package: bytes, make, message: str) -> None:
    with pytest.raises(PackageError, match=message):
        read_package(make(package))


def test_axes_round_trip() -> None:
    image = np.arange(12).reshape(3, 4)
    model = to_model_axes(image, ["batch", "channel", "y", "x"], "yx")
    assert model.shape == (1, 1, 3, 4)
    np.testing.assert_array_equal(to_port_axes(model, ["batch", "channel", "y", "x"], "yx"), image)
    with pytest.raises(ValueError, match="2 dimensions"):
        to_model_axes(np.zeros((2, 3, 4)), ["batch", "channel", "y", "x"], "yx")


@pytest.fixture(scope="module")
def model_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    running = start_hub(tmp_path_factory.mktemp("models"))
    yield running
    stop_hub(running)


@pytest.fixture
async def client(model_hub: HubProcess) -> AsyncIterator:
    server = await connect(model_hub.url, token=model_hub.token)
    yield server
    await server.disconnect()


PLUGIN = "bioimageio-scopeflow-nuclei-segmentation"


def post_zip(hub: HubProcess, data: bytes, token: str | None = None) -> dict:
    request = urllib.request.Request(
        hub.url + "/api/models/preview",
        data=data,
        method="POST",
        headers={"Content-Type": "application/zip", "Authorization": f"token {token or hub.token}"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


@pytest.mark.hub
async def test_install_run_verify_and_wire_the_package(model_hub: HubProcess, package: bytes, client) -> None:
    preview = post_zip(model_hub, package)
    assert preview["id"] == PLUGIN and preview["weights"][0] == "torchscript"
    assert model_hub.request("/api/plugins/" + PLUGIN)[0] == 404  # nothing installed by a preview
    with pytest.raises(urllib.error.HTTPError) as refused:
        post_zip(model_hub, b"PK not really")
    assert refused.value.code == 400 and b"not a zip" in refused.value.read()
    with pytest.raises(urllib.error.HTTPError) as refused:
        post_zip(model_hub, package, token="wrong")
    assert refused.value.code in (401, 403)
    assert model_hub.request("/api/models/install", "POST", {"sha256": "0" * 64})[0] == 404
    installed = model_hub.json("/api/models/install", "POST", {"sha256": preview["sha256"]})
    assert installed["id"] == PLUGIN and installed["tests"]
    (op,) = installed["ops"]
    assert (op["inputs"][0]["axes"], op["outputs"][0]["axes"]) == ("yx", "cyx")
    assert preview["sha256"] in (model_hub.data_dir / "plugins" / f"{PLUGIN}.py").read_text()

    image = formats.load_sample("nuclei-2d")[0][:300, :200]  # a size the network does not take as it is
    maps = await (await client.get_plugin(PLUGIN)).predict(image)
    assert maps.shape == (2, 300, 200) and maps.dtype == np.float32
    foreground = maps[0] > 0
    assert 0.1 < foreground.mean() < 0.6  # nuclei found, not everything and not nothing

    report = model_hub.json(f"/api/plugins/{PLUGIN}/verify", "POST")
    assert report["passed"], report
    assert report["cases"][0]["difference"] <= 1e-3

    workflows = await client.get_service("workflows")
    wrong = {
        "format": "scopeflow.workflow",
        "version": 1,
        "inputs": [{"name": "image", "kind": "ndarray", "axes": "yx", "default": {"sample": "nuclei-2d"}}],
        "nodes": [
            {"id": "model", "plugin": PLUGIN, "op": "predict"},
            {"id": "measure", "plugin": "measure", "op": "regions"},
        ],
        "edges": [
            {"from": ["$input", "image"], "to": ["model", "image"]},
            {"from": ["model", "result"], "to": ["measure", "labels"]},  # cyx maps into a yx labels port
        ],
        "plugins": {
            name: {"version": m["version"], "sha256": m["sha256"]}
            for name, m in ((n, model_hub.json(f"/api/plugins/{n}")) for n in (PLUGIN, "measure"))
        },
    }
    checked = await workflows.validate(wrong)
    messages = [e["message"] for e in checked["errors"]]
    assert messages == ["node measure: predict gives cyx, regions expects yx"]
    good = dict(wrong, nodes=wrong["nodes"][:1], edges=wrong["edges"][:1])
    good["plugins"] = {PLUGIN: wrong["plugins"][PLUGIN]}
    good["outputs"] = [{"name": "maps", "from": ["model", "result"]}]
    record = await workflows.run(good)
    assert record["state"] == "done", record

    # round trip: the package's maps, turned into labels by the native plugin's own watershed, give the
    # native plugin's labels on the sample at the scale the network was trained at (the package has no
    # rescaling step: bioimage.io cannot declare one), from the same weights (TorchScript against eager
    # PyTorch: maps equal to ~1e-6)
    sample = formats.load_sample("nuclei-2d")[0]
    native = await client.get_plugin("nuclei-segmentation")
    from_package = await native.labels_from_maps(await (await client.get_plugin(PLUGIN)).predict(sample))
    trained = (await native.assess(sample))["trained"]["diameter_median"]
    direct = await native.segment(sample, diameter=trained)
    agree = float(np.mean((from_package > 0) == (direct > 0)))
    assert from_package.max() == direct.max() and agree > 0.9999, (from_package.max(), direct.max(), agree)
    assert label_f1(from_package, direct) == 1.0
    np.testing.assert_allclose(
        await workflows.run_output(record["id"], "maps"),
        await (await client.get_plugin(PLUGIN)).predict(formats.load_sample("nuclei-2d")[0]),
        atol=1e-5,
    )


@pytest.mark.hub
def test_install_model_from_a_folder_on_the_command_line(package: bytes, tmp_path: Path) -> None:
    import subprocess
    import sys

    folder = tmp_path / "unpacked"
    zipfile.ZipFile(io.BytesIO(package)).extractall(folder)
    command = [sys.executable, "-m", "scopeflow.cli.main", "install-model", str(folder)]
    data = ["--data-dir", str(tmp_path / "data")]
    declined = subprocess.run(command + data, input="n\n", capture_output=True, text=True, timeout=120)
    assert declined.returncode == 1 and "class UNet" in declined.stdout  # the code was shown first
    assert not (tmp_path / "data" / "plugins" / f"{PLUGIN}.py").exists()
    done = subprocess.run(command + data + ["--yes"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "data" / "plugins" / f"{PLUGIN}.py").is_file()
    damaged = folder / "weights.pt"
    damaged.write_bytes(damaged.read_bytes()[:-10])
    refused = subprocess.run(command + data + ["--yes"], capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "sha256" in refused.stderr


@pytest.mark.hub
def test_a_package_previews_from_its_url(model_hub: HubProcess, package: bytes, file_server) -> None:
    base, folder = file_server
    (folder / "nuclei.zip").write_bytes(package)
    preview = model_hub.json("/api/models/preview", "POST", {"url": f"{base}/nuclei.zip"})
    assert preview["id"] == PLUGIN and preview["source_url"] == f"{base}/nuclei.zip"
    missing = model_hub.request("/api/models/preview", "POST", {"url": f"{base}/absent.zip"})
    assert missing[0] == 400 and b"404" in missing[1]
    (folder / "page.zip").write_text("<html>not a package</html>")
    assert b"not a zip" in model_hub.request("/api/models/preview", "POST", {"url": f"{base}/page.zip"})[1]
