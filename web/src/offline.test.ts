import { describe, expect, it } from "vitest";
import { browserRequirements, decodeDataUrl, dropOutside, explainWorkerError, offlineMessage, whereIs } from "./offline";

const HUB = "http://127.0.0.1:9527";

describe("offline", () => {
  it("tells the hub's files from the internet", () => {
    expect(whereIs("/assets/x.js", HUB)).toBe("hub");
    expect(whereIs("lib.js", HUB)).toBe("hub");
    expect(whereIs("http://127.0.0.1:9527/a.png", HUB)).toBe("hub");
    expect(whereIs("https://cdn.jsdelivr.net/npm/vega@5", HUB)).toBe("outside");
    expect(whereIs("//unpkg.com/x.js", HUB)).toBe("outside");
    expect(whereIs("http://127.0.0.1:9999/a.png", HUB)).toBe("outside");
    expect(whereIs("data:image/png;base64,AAAA", HUB)).toBe("other");
  });

  it("drops script and link tags of other origins and names them", () => {
    const html = `<link rel="stylesheet" href="https://x.org/a.css"><script src='https://cdn.org/b.js'></script>
<script src=/assets/c.js></script><script>var inline = 1;</script><link href="/d.css" rel="stylesheet">`;
    const { html: out, outside } = dropOutside(html, HUB);
    expect(outside).toEqual(["https://cdn.org/b.js", "https://x.org/a.css"]);
    expect(out).toContain("/assets/c.js");
    expect(out).toContain("var inline = 1;");
    expect(out).toContain("/d.css");
    expect(out).not.toContain("cdn.org/b.js\"");
    expect(out).not.toMatch(/<script src='https/);
  });

  it("sorts ImJoy requirements of browser plugins", () => {
    const got = browserRequirements(
      ["https://cdn.org/lib.js", "css:https://u.org/s.css", "cache:https://c.org/x", "/files/local.js", "css:/files/s.css", "pip:numpy", "numpy"],
      HUB,
    );
    expect(got).toEqual({ scripts: ["/files/local.js"], styles: ["/files/s.css"], outside: ["https://cdn.org/lib.js", "https://u.org/s.css"] });
  });

  it("says what is wrong in words", () => {
    expect(offlineMessage("P", ["https://a/x.js"])).toBe(
      "P loads https://a/x.js from the internet, which scopeflow does not do: ship the file with the plugin",
    );
    expect(explainWorkerError("W", "ReferenceError: document is not defined")).toContain("runs in a Web Worker, which has no document");
    expect(explainWorkerError("W", "boom")).toBe("W: boom");
  });

  it("decodes data: URLs", () => {
    expect(decodeDataUrl("data:image/png;base64,AAE=")).toEqual({ type: "image/png", bytes: new Uint8Array([0, 1]) });
    expect(decodeDataUrl("data:,a%20b")?.bytes).toEqual(new TextEncoder().encode("a b"));
  });
});
