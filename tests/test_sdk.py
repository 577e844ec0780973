"""What plugin files and scripts import (``from scopeflow import op, Image, Table, api``): nothing heavy.

No ``from __future__ import annotations`` here: ``Image["yx"]`` must stay an expression, as in a plugin.
"""

import json
import subprocess
import sys

import pytest

from scopeflow import Image, Table, api, op

pytestmark = pytest.mark.unit


def test_importing_the_sdk_loads_no_server_code() -> None:
    script = "import json, sys; import scopeflow; print(json.dumps(sorted(sys.modules)))"
    loaded = json.loads(
        subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    )
    ours = [m for m in loaded if m.startswith("scopeflow")]
    assert ours == ["scopeflow", "scopeflow.sdk"]
    heavy = {"tornado", "msgpack", "imjoy_rpc", "numpy", "jupyter_server", "pydantic", "websockets"}
    assert not heavy & {m.split(".")[0] for m in loaded}


def test_op_marks_a_function_and_image_names_axes() -> None:
    @op(title="Blur", inputs={"sigma": {"minimum": 0}})
    def blur(image: Image["yx"], sigma: float = 1.0) -> Image["yx"]:
        return image

    assert blur.__scopeflow_op__["title"] == "Blur"
    assert blur.__scopeflow_op__["inputs"] == {"sigma": {"minimum": 0}}
    assert Image["cyx"].axes == "cyx" and issubclass(Image["cyx"], Image)
    assert Table.__doc__


def test_api_outside_a_kernel_says_where_it_works() -> None:
    with pytest.raises(RuntimeError, match="only available inside a plugin kernel"):
        api.showMessage("hello")
