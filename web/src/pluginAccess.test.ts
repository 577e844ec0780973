import { describe, expect, it } from "vitest";
import { declares, dependencyName, pluginAccess } from "./pluginAccess";

const plugins = [
  { id: "viewer", name: "Viewer", dependencies: ["oeway/ImJoy-Plugins:Image Files", "https://x.org/p/Helper.imjoy.html"] },
  { id: "io", name: "Image Files" },
  { id: "helper", name: "Helper" },
  { id: "segment", name: "Segment" },
];

describe("pluginAccess", () => {
  it("reads dependency entries", () => {
    expect(dependencyName("oeway/ImJoy-Plugins:Image Window")).toBe("Image Window");
    expect(dependencyName("Image Window@stable")).toBe("Image Window");
    expect(dependencyName("https://x.org/a/My%20Plugin.imjoy.html")).toBe("My Plugin");
    expect(dependencyName("https://x.org/a/tool.py?raw=1")).toBe("tool");
    expect(dependencyName(" io ")).toBe("io");
  });

  it("lets a plugin use itself and what it declares", () => {
    expect(declares(plugins[0], plugins[1])).toBe(true);
    expect(declares(plugins[0], plugins[2])).toBe(true);
    expect(declares(plugins[0], plugins[0])).toBe(true);
    expect(declares(plugins[0], plugins[3])).toBe(false);
    expect(declares(plugins[3], plugins[1])).toBe(false);
  });

  it("asks the user once for anything else, and refuses unknown names", async () => {
    const asked: string[] = [];
    let answer = false;
    const mayUse = pluginAccess(
      () => plugins,
      async (_title, text) => {
        asked.push(text);
        return answer;
      },
    );
    expect((await mayUse("viewer", "Image Files")).id).toBe("io");
    expect((await mayUse("viewer", "io")).id).toBe("io");
    await expect(mayUse("viewer", "Segment")).rejects.toThrow(/may not use Segment/);
    await expect(mayUse("viewer", "segment")).rejects.toThrow(/may not use Segment/); // remembered: no new ask
    expect(asked).toHaveLength(1);
    answer = true;
    expect((await mayUse("helper", "Segment")).id).toBe("segment");
    expect((await mayUse("helper", "Segment")).id).toBe("segment");
    expect(asked).toHaveLength(2);
    await expect(mayUse("viewer", "workflows")).rejects.toThrow(/no plugin "workflows"/);
    await expect(mayUse("nobody", "io")).rejects.toThrow(/no plugin/);
    expect(asked).toHaveLength(2);
  });
});
