import { describe, expect, it } from "vitest";
import { compareInstalled, fetchTarget, firstLook, isLocalAddress, parseDependencies, parseDependency, rawUrl } from "./dependencies";

const installed = [
  { id: "image-window", name: "Image Window", version: "0.3.0", sha256: "a".repeat(64), source_url: null },
  {
    id: "helper",
    name: "Helper",
    version: "1.0.0",
    sha256: "b".repeat(64),
    source_url: "https://raw.githubusercontent.com/someone/plugins/main/Helper.imjoy.html",
  },
];
const shared = { url: "https://example.org/p/Main.imjoy.html", publicOnly: true };

describe("dependencies", () => {
  it("tells URLs, GitHub shorthand and names apart", () => {
    expect(parseDependency(" https://x.org/a/My%20Tool.imjoy.html ")).toEqual({
      kind: "url",
      entry: "https://x.org/a/My%20Tool.imjoy.html",
      url: "https://x.org/a/My%20Tool.imjoy.html",
      name: "My Tool",
    });
    expect(parseDependency("oeway/ImJoy-Plugins:Image Window@stable")).toMatchObject({
      kind: "github",
      repo: "oeway/ImJoy-Plugins",
      name: "Image Window",
    });
    expect(parseDependency("Image Window")).toMatchObject({ kind: "name", name: "Image Window" });
  });

  it("leaves out blanks, non-strings and repeats (a blob link and its raw URL are one file)", () => {
    const deps = parseDependencies([
      "https://github.com/someone/plugins/blob/main/Helper.imjoy.html",
      "https://raw.githubusercontent.com/someone/plugins/main/Helper.imjoy.html",
      "",
      42,
      "Image Window",
      "Image Window",
    ]);
    expect(deps.map((d) => d.kind)).toEqual(["url", "name"]);
  });

  it("reads GitHub blob pages as the raw file, like the hub", () => {
    expect(rawUrl("https://github.com/o/r/blob/main/dir/A.imjoy.html")).toBe(
      "https://raw.githubusercontent.com/o/r/main/dir/A.imjoy.html",
    );
    expect(rawUrl("https://x.org/a.py")).toBe("https://x.org/a.py");
  });

  it("knows what is installed already, by source URL or by name", () => {
    const blob = parseDependency("https://github.com/someone/plugins/blob/main/Helper.imjoy.html");
    expect(firstLook(blob, installed, shared)).toMatchObject({ state: "installed", plugin: { id: "helper" } });
    expect(firstLook(parseDependency("Image Window"), installed, shared)).toMatchObject({ state: "installed" });
    expect(firstLook(parseDependency("oeway/ImJoy-Plugins:Image Window"), installed, shared)).toMatchObject({
      state: "installed",
    });
  });

  it("has the hub look GitHub shorthand up (public hosts only), and says why unknown names are not fetched", () => {
    const github = parseDependency("oeway/ImJoy-Plugins:Image Viewer");
    expect(firstLook(github, installed, shared)).toEqual({ state: "fetch", publicOnly: true });
    expect(fetchTarget(github)).toBe("oeway/ImJoy-Plugins:Image Viewer");
    expect(fetchTarget(parseDependency("a/b@dev:Tool@GPU"))).toBe("a/b@dev:Tool@GPU");
    expect(fetchTarget(parseDependency("Nowhere"))).toBeNull();
    const name = firstLook(parseDependency("Nowhere"), installed, shared);
    expect(name.state === "unavailable" && name.message).toContain('no plugin called "Nowhere"');
  });

  it("fetches public URLs with public_only, and local ones only when the user confirmed that host", () => {
    expect(firstLook(parseDependency("https://x.org/B.imjoy.html"), installed, shared)).toEqual({
      state: "fetch",
      publicOnly: true,
    });
    const local = parseDependency("http://127.0.0.1:8000/B.imjoy.html");
    expect(firstLook(local, installed, { url: "http://127.0.0.1:8000/A.imjoy.html", publicOnly: true })).toEqual({
      state: "fetch",
      publicOnly: null,
    });
    expect(firstLook(local, installed, { url: "http://127.0.0.1:8000/A.imjoy.html", publicOnly: false })).toEqual({
      state: "fetch",
      publicOnly: false,
    });
    expect(firstLook(local, installed, { url: "http://127.0.0.1:9000/A.imjoy.html", publicOnly: false })).toEqual({
      state: "fetch",
      publicOnly: null,
    });
    expect(isLocalAddress("http://192.168.1.4/x.py")).toBe(true);
    expect(isLocalAddress("https://x.org/x.py")).toBe(false);
  });

  it("compares a preview with what is installed", () => {
    expect(compareInstalled({ id: "helper", sha256: "b".repeat(64) }, installed).same?.id).toBe("helper");
    expect(compareInstalled({ id: "helper", sha256: "c".repeat(64) }, installed).replaces?.id).toBe("helper");
    expect(compareInstalled({ id: "new", sha256: "c".repeat(64) }, installed)).toEqual({});
  });
});
