"""The notebook client: a real notebook (nbclient, a real ipykernel) runs a plugin and a workflow on a test
hub with ``scopeflow.connect_sync()``, the address and token from the environment."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import HubProcess, start_hub, stop_hub

pytestmark = pytest.mark.hub

CELLS = [
    "import numpy as np\nimport scopeflow\nhub = scopeflow.connect_sync()\nprint(hub.plugins())",
    'blur = hub.get_plugin("Gaussian blur")\nhelp(blur.blur)\n'
    'print(sorted(n for n in dir(blur) if not n.startswith("_")))',
    "image = np.random.default_rng(0).random((64, 64), dtype=np.float32)\n"
    "smooth = blur.blur(image, sigma=2.0)\n"
    "print(type(smooth).__name__, smooth.shape, smooth.axes, float(smooth.std()) < float(image.std()))\n"
    "smooth",
    'outputs = hub.run_workflow("smooth-threshold-measure")\nprint(sorted(outputs))\noutputs["nuclei"]',
    "try:\n    blur.blur('not an image', sigma=1.0)\nexcept scopeflow.rpc.notebook.PluginError as error:\n"
    "    print('refused:', str(error).splitlines()[0])",
    "hub.disconnect()",
]


@pytest.fixture(scope="module")
def notebook_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    running = start_hub(tmp_path_factory.mktemp("notebook"))
    yield running
    stop_hub(running)


def test_a_notebook_runs_a_plugin_and_a_workflow(
    notebook_hub: HubProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCOPEFLOW_URL", notebook_hub.url)
    monkeypatch.setenv("SCOPEFLOW_TOKEN", notebook_hub.token)
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code) for code in CELLS])
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = [cell.outputs for cell in notebook.cells]

    def text(index: int) -> str:
        return "".join(o.get("text", "") for o in outputs[index] if o.output_type == "stream")

    assert "Gaussian blur" in text(0)
    assert "sigma" in text(1) and "kernel width" in text(1) and "['blur', 'id', 'name']" in text(1)
    assert "ImageResult (64, 64) yx True" in text(2)
    shown = [o for o in outputs[2] if o.output_type == "execute_result"]
    assert shown and "image/png" in shown[0]["data"]  # the result is drawn inline
    assert "['labels', 'nuclei', 'smoothed']" in text(3)
    table = next(o for o in outputs[3] if o.output_type == "execute_result")["data"]
    assert "text/html" in table and "<table>" in table["text/html"] and "area" in table["text/html"]
    assert text(4).startswith("refused: ") and "Traceback" not in text(4), text(4)  # the message first
    Path(tmp_path / "ran.ipynb").write_text(nbformat.writes(notebook))


def test_progress_becomes_a_bar_and_messages_are_printed(capsys: pytest.CaptureFixture[str]) -> None:
    from scopeflow.rpc.notebook import _Progress

    progress = _Progress()
    progress.dispatch("nuclei-segmentation", "showProgress", [0.25])
    assert progress.bars["nuclei-segmentation"].n == 25
    progress.dispatch("nuclei-segmentation", "showProgress", [{"p": 80}])  # ImJoy's keyword form
    assert progress.bars["nuclei-segmentation"].n == 80
    progress.done("nuclei-segmentation")
    assert progress.bars == {}
    progress.dispatch("measure", "showMessage", ["12 nuclei"])
    assert "[measure] 12 nuclei" in capsys.readouterr().out
    assert progress.dispatch("measure", "confirm", ["Delete?"]) is False  # nobody to ask: no
