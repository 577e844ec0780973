// Runs a workflow through the hub's `workflows` service with the npm imjoy-rpc client, as the web app does.
// Usage: node workflows.js URL TOKEN DOCUMENT_JSON  → prints one JSON line with what it observed.
const { hyphaWebsocketClient } = require("imjoy-rpc");
const WebSocket = require("ws");

globalThis.WebSocket = WebSocket;
globalThis.ImageData = class ImageData {};

(async () => {
  const [url, token, docText] = process.argv.slice(2);
  const doc = JSON.parse(docText);
  const server = await hyphaWebsocketClient.connectToServer({ server_url: url, token, WebSocketClass: WebSocket });
  const svc = await server.getService("workflows");
  const out = {};
  out.validate = await svc.validate(doc);
  const events = [];
  const record = await svc.run(doc, {}, { cache: false }, (event) => { events.push(event); });
  out.state = record.state;
  out.nodes = Object.fromEntries(Object.entries(record.nodes).map(([id, n]) => [id, n.state]));
  const image = await svc.run_output(record.id, "image");
  out.image = { shape: image._rshape, dtype: image._rdtype };
  await new Promise((resolve) => setTimeout(resolve, 500));
  out.events = events.map((e) => `${e.node || "run"}:${e.state}`);
  out.runs = (await svc.list_runs(1)).map((r) => r.id === record.id);
  console.log(JSON.stringify(out));
  await server.disconnect();
  process.exit(0);
})().catch((e) => {
  console.error("FAILED", e);
  process.exit(1);
});
