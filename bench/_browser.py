"""Array round trips from Chromium: the web app's codec (web/src/transfer.ts) with the npm imjoy-rpc client.

The hub serves a bench page among the web app's files (``Hub.web_dir`` set to a directory :func:`prepare`
fills; ``/assets/bench.html``, which unlike the app's page ``/`` has no Content-Security-Policy, as the
page runs inline code and reaches a raw websocket echo on another port): it loads imjoy-rpc's browser
build from web/node_modules and web/src/transfer.ts compiled by TypeScript,
connects, and times ``bench-echo.echo_array`` for each size, beside a raw websocket echo of the same bytes
and a plain copy of the array, all from the same page. Headless Chromium runs it on its own, not driven
by Playwright: Playwright's network instrumentation copies every byte a page sends or receives to its
driver, which caps a page near 20 MB/s on this machine kind. The page sends its figures back over a
websocket.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import tempfile
import urllib.parse
from pathlib import Path
from typing import Any

from websockets.asyncio.server import serve as ws_serve

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
RPC_BUILD = ROOT / "web" / "node_modules" / "imjoy-rpc" / "dist" / "hypha-rpc-websocket.js"
TYPESCRIPT = ROOT / "tests" / "js" / "node_modules" / "typescript"
TRANSFER = ROOT / "web" / "src" / "transfer.ts"

COMPILE = """
const ts = require(process.argv[1]);
const source = require("fs").readFileSync(process.argv[2], "utf8");
const options = {module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2020};
const out = ts.transpileModule(source, {compilerOptions: options});
process.stdout.write(out.outputText);
"""

MEASURE = """async ({token, sizes, repeat, rawPort}) => {
    const {NdArray, installArrayCodec} = window.scopeflowTransfer;
    const best = async (f) => {
        let b = Infinity;
        for (let i = 0; i < repeat; i++) {
            const t = performance.now();
            await f();
            b = Math.min(b, (performance.now() - t) / 1000);
        }
        return b;
    };
    const server = await hyphaWebsocketClient.connectToServer({server_url: location.origin, token});
    const stats = await installArrayCodec(server, {baseUrl: location.origin, token});
    const echo = await server.getPlugin("bench-echo");
    const ws = new WebSocket(`ws://127.0.0.1:${rawPort}`);
    ws.binaryType = "arraybuffer";
    await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject; });
    const wsEcho = (data) => new Promise((resolve) => {
        ws.onmessage = (e) => resolve(e.data);
        ws.send(data);
    });
    const out = {scopeflow: {}, raw_websocket: {}, copy: {}};
    for (let i = 0; i < 50; i++) { await echo.ping(); await wsEcho("x"); }
    const tiny = async (f) => { const ts = []; for (let i = 0; i < 200; i++) {
        const t = performance.now(); await f(); ts.push(performance.now() - t); }
        ts.sort((a, b) => a - b); return ts[ts.length >> 1]; };
    out.scopeflow.tiny_ms = await tiny(() => echo.ping());
    out.raw_websocket.tiny_ms = await tiny(() => wsEcho("x".repeat(64)));
    for (const size of sizes) {
        const n = size * 250000, data = new Float32Array(n);
        for (let i = 0; i < n; i++) data[i] = i % 1000;
        const array = new NdArray(data, [n], "float32");
        const key = `${size}MB_s`;
        out.scopeflow[key] = await best(async () => {
            const back = await echo.echo_array(array);
            if (back.data.length !== n || back.data[n - 1] !== data[n - 1]) throw new Error("not the same");
        });
        out.raw_websocket[key] = await best(() => wsEcho(data.buffer));
        out.copy[key] = await best(async () => { data.slice().slice(); });
    }
    out.uploaded = stats.uploaded;
    ws.close();
    await server.disconnect();
    return out;
}"""


def missing() -> str | None:
    """Why the browser figures cannot be measured here, or None."""
    for need, path in (("Chromium", CHROMIUM), ("the web app's packages (scripts/setup)", RPC_BUILD),
                       ("TypeScript (npm ci in tests/js)", TYPESCRIPT)):  # fmt: skip
        if not path.exists():
            return f"needs {need}: {path} is missing"
    return None


def transfer_script() -> str:
    """web/src/transfer.ts as a classic script that sets ``window.scopeflowTransfer``."""
    compiled = subprocess.run(
        ["node", "-e", COMPILE, str(TYPESCRIPT), str(TRANSFER)],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout  # fmt: skip
    return f"(function () {{ const exports = {{}};\n{compiled}\nwindow.scopeflowTransfer = exports; }})();"


PAGE = """<!doctype html>
<title>scopeflow array bench</title>
<script src="rpc.js"></script>
<script src="transfer.js"></script>
<script>
const params = JSON.parse(decodeURIComponent(location.hash.slice(1)));
(async () => {
    let result;
    try { result = await (MEASURE)(params); } catch (error) { result = {error: String(error)}; }
    const back = new WebSocket(`ws://127.0.0.1:${params.collector}`);
    back.onopen = () => back.send(JSON.stringify(result));
})();
</script>
"""


def prepare(web_dir: Path) -> None:
    """Fill ``web_dir`` with the bench page and its scripts (the hub serves it as its index)."""
    (web_dir / "assets").mkdir(parents=True, exist_ok=True)
    (web_dir / "assets" / "rpc.js").write_text(RPC_BUILD.read_text())
    (web_dir / "assets" / "transfer.js").write_text(transfer_script())
    (web_dir / "assets" / "bench.html").write_text(PAGE.replace("MEASURE", MEASURE))


async def browser_round_trips(
    url: str, token: str, sizes: list[int], repeat: int, raw_port: int, timeout: float = 1800
) -> dict[str, Any]:
    """Open the hub's bench page in headless Chromium; return the figures it sends back."""
    result: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def collect(ws: Any) -> None:
        message = await ws.recv()
        if not result.done():
            result.set_result(str(message))

    async with ws_serve(collect, "127.0.0.1", 0) as collector:
        port = next(iter(collector.sockets)).getsockname()[1]
        params = {"token": token, "sizes": sizes, "repeat": repeat, "rawPort": raw_port, "collector": port}
        page = f"{url}/assets/bench.html#{urllib.parse.quote(json.dumps(params))}"
        # Chromium's helper processes can still write to the profile as it exits: leave what they write
        with tempfile.TemporaryDirectory(prefix="scopeflow-chromium-", ignore_cleanup_errors=True) as profile:
            chromium = await asyncio.create_subprocess_exec(
                str(CHROMIUM), "--headless=new", "--no-sandbox", f"--user-data-dir={profile}", page,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            try:
                try:
                    figures: dict[str, Any] = json.loads(await asyncio.wait_for(result, timeout))
                except TimeoutError:
                    raise RuntimeError(f"the bench page sent no figures in {timeout:.0f} s") from None
            finally:
                chromium.terminate()
                await chromium.wait()
    if "error" in figures:
        raise RuntimeError(f"the bench page failed: {figures['error']}")
    return figures
