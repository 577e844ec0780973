// Drives a hub's array-echo plugin through web/src/transfer.ts (compiled here with TypeScript's
// transpileModule: the file the web app imports is the file tested) and the npm imjoy-rpc client.
// Usage: node arrays.js URL TOKEN           → checks against the test plugin array-echo
//        node arrays.js URL TOKEN 4,64,256  → times round trips through the bench plugin bench-echo
// Either way it prints one JSON line with what it observed.
const fs = require("fs");
const path = require("path");
const Module = require("module");
const ts = require("typescript");
const { hyphaWebsocketClient } = require("imjoy-rpc");
const WebSocket = require("ws");

globalThis.WebSocket = WebSocket;
globalThis.ImageData = class ImageData {};

function load(file) {
  const source = fs.readFileSync(file, "utf8");
  const { outputText } = ts.transpileModule(source, {
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2020 },
    fileName: file,
  });
  const mod = new Module(file);
  mod._compile(outputText, file);
  return mod.exports;
}

const { NdArray, installArrayCodec, stamp } = load(path.join(__dirname, "..", "..", "web", "src", "transfer.ts"));

function equal(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

(async () => {
  const [url, token, sizes] = process.argv.slice(2);
  const server = await hyphaWebsocketClient.connectToServer({ server_url: url, token, WebSocketClass: WebSocket });
  const stats = await installArrayCodec(server, { baseUrl: url, token });
  const out = { installed: stats !== null };
  if (sizes) {
    out.timings = await time(await server.getPlugin("bench-echo"), sizes.split(",").map(Number));
  } else {
    await check(await server.getPlugin("array-echo"), stats, out);
    await checkPlain(url, token, out);
  }
  console.log(JSON.stringify(out));
  await server.disconnect();
  process.exit(0);
})().catch((e) => {
  console.error("FAILED", e);
  process.exit(1);
});

async function check(echo, stats, out) {
  const floats = new NdArray(Float32Array.from({ length: 2_000_000 }, (_, i) => i * 0.5), [1000, 2000], "float32");
  let back = await echo.echo(floats);
  out.float32 = back instanceof NdArray && back.dtype === "float32" && equal(back.shape, floats.shape) && equal(back.data, floats.data);
  out.uploaded = stats.uploaded;
  out.downloaded = stats.downloaded;
  out.on_socket = [stats.socketUploaded, stats.socketDownloaded];

  const small = new NdArray(Uint16Array.from({ length: 12 }, (_, i) => i), [3, 4], "uint16");
  back = await echo.echo(small);
  out.small = back instanceof NdArray && back.dtype === "uint16" && equal(back.data, small.data);
  out.small_inline = stats.uploaded === 8_000_000;

  const bools = new NdArray(Uint8Array.from({ length: 3_000_000 }, (_, i) => i % 3 === 0), [3_000_000], "bool");
  const longs = new NdArray(BigInt64Array.from({ length: 300_000 }, (_, i) => BigInt(i) * 1_000_000_007n), [300_000], "int64");
  const nested = await echo.echo({ a: [bools, { b: longs }], c: "text" });
  out.nested = nested.c === "text" && nested.a[0].dtype === "bool" && equal(nested.a[0].data, bools.data)
    && nested.a[1].b.dtype === "int64" && equal(nested.a[1].b.data, longs.data);

  const made = await echo.make(3);
  out.from_kernel = made instanceof NdArray && made.size === 750_000 && made.data[749_999] === 749_999;
  const fortran = await echo.make_fortran(600, 400);
  out.fortran = fortran.shape.join() === "600,400" && fortran.data[1 * 400 + 2] === 402 && fortran.data[599 * 400 + 399] === 239_999;
  const described = await echo.describe(floats);
  out.describe = described.dtype === "<f4" && described.shape.join() === "1000,2000";
  out.stamp = stamp(new Uint8Array([0x81, 0xa1, 0x61, 0x01]))[0] === 0x82;
}

async function checkPlain(url, token, out) {
  // as code written for imjoy-rpc's plain arrays sees them
  const server = await hyphaWebsocketClient.connectToServer({ server_url: url, token, WebSocketClass: WebSocket });
  const stats = await installArrayCodec(server, { baseUrl: url, token, plain: true });
  const echo = await server.getPlugin("array-echo");
  const made = await echo.make(3);
  const values = new Float32Array(made._rvalue.slice().buffer);
  const small = await echo.echo(new NdArray(Uint16Array.from([1, 2, 3]), [3], "uint16"));
  out.plain = !(made instanceof NdArray) && made._rtype === "ndarray" && made._rdtype === "float32"
    && values.length === 750_000 && values[749_999] === 749_999 && stats.downloaded === 3_000_000
    && small._rtype === "ndarray" && small._rdtype === "uint16";
  await server.disconnect();
}

async function time(echo, sizes) {
  const timings = {};
  for (const size of sizes) {
    const count = (size * 1_000_000) / 4;
    const array = new NdArray(Float32Array.from({ length: count }, (_, i) => i % 1000), [count], "float32");
    let best = Infinity;
    for (let i = 0; i < 3; i++) {
      const start = performance.now();
      const result = await echo.echo_array(array);
      best = Math.min(best, (performance.now() - start) / 1000);
      if (!equal(result.data, array.data)) throw new Error(`${size} MB came back different`);
    }
    timings[`${size}MB_s`] = best;
  }
  return timings;
}
