// Drives a hub with the npm imjoy-rpc 0.5.59 client (hyphaWebsocketClient), as the web app will.
// Usage: node client.js URL TOKEN  → prints one JSON line with what it observed.
const { hyphaWebsocketClient } = require("imjoy-rpc");
const WebSocket = require("ws");

// browser globals the client refers to
globalThis.WebSocket = WebSocket;
globalThis.ImageData = class ImageData {};

function bytesOf(value) {
  return new Uint8Array(value.buffer || value, value.byteOffset || 0, value.byteLength);
}

(async () => {
  const [url, token] = process.argv.slice(2);
  const server = await hyphaWebsocketClient.connectToServer({ server_url: url, token, WebSocketClass: WebSocket });
  const out = {};
  out.workspace = server.config.workspace;
  out.services = (await server.list_services()).map((s) => s.id);
  out.echo = await server.echo({ a: [1, 2], s: "x" });
  const hello = await server.getPlugin("hello");
  out.hello = await hello.hello("js");
  const crasher = await server.getPlugin("crasher");
  const pixels = new Uint16Array(16).map((_, i) => i);
  const inverted = await crasher.invert({
    _rtype: "ndarray", _rvalue: new Uint8Array(pixels.buffer), _rshape: [4, 4], _rdtype: "uint16",
  });
  const back = bytesOf(inverted._rvalue);
  out.invert = { shape: inverted._rshape, dtype: inverted._rdtype,
                 values: Array.from(new Uint16Array(back.slice().buffer)) };
  await server.export({ twice: (v) => v * 2 });
  const mine = await server.get_service(server.config.client_id + ":default");
  out.own = await mine.twice(21);
  try {
    await hello.fail();
  } catch (e) {
    out.fail = String(e);
  }
  console.log(JSON.stringify(out));
  await server.disconnect();
  process.exit(0);
})().catch((e) => {
  console.error("FAILED", e);
  process.exit(1);
});
