// A plugin's environment: while its requirements install, the installer's last lines and a way to stop;
// once it runs, the package versions its requirements resolved to (what a workflow pins beside its sha256).

import { useEffect, useState } from "react";
import { pluginAction } from "../actions";
import { getJson } from "../hub";
import { get } from "../store";
import type { PluginManifest } from "../types";

interface LogLine {
  time: number;
  level: string;
  message: string;
}

function InstallProgress({ plugin }: { plugin: PluginManifest }) {
  const [lines, setLines] = useState<string[]>([]);
  useEffect(() => {
    let alive = true;
    const poll = async () => {
      try {
        const body = await getJson<{ logs: LogLine[] }>(get().token || "", `/api/plugins/${plugin.id}/logs`);
        if (alive) setLines(body.logs.slice(-6).map((l) => l.message));
      } catch {
        // the next poll tries again; the plugin's status says what happened
      }
    };
    void poll();
    const timer = window.setInterval(() => void poll(), 1000);
    return () => {
      alive = false;
      window.clearInterval(timer);
    };
  }, [plugin.id]);
  return (
    <div className="sf-install" data-testid="plugin-installing">
      <div>
        Preparing its packages ({plugin.requirements.join(", ")}): the first start installs them, later starts reuse
        them.{" "}
        <button onClick={() => void pluginAction(plugin, "stop")} data-testid="plugin-cancel">
          Cancel
        </button>
      </div>
      {lines.length > 0 && <pre className="sf-small">{lines.join("\n")}</pre>}
    </div>
  );
}

export function EnvironmentInfo({ plugin }: { plugin: PluginManifest }) {
  const state = plugin.status?.state ?? "stopped";
  const env = plugin.status?.environment;
  if (state === "starting" && plugin.requirements.length > 0) return <InstallProgress plugin={plugin} />;
  if (!env || Object.keys(env.packages).length === 0) return null;
  const packages = Object.entries(env.packages).sort(([a], [b]) => a.localeCompare(b));
  const where = env.key
    ? `its own environment adds ${env.installed?.length ?? 0} to the hub's`
    : "all from the hub's environment";
  return (
    <details className="sf-muted sf-small" data-testid="plugin-environment">
      <summary>
        packages ({where}): {packages.length}
      </summary>
      <ul>
        {packages.map(([name, version]) => (
          <li key={name}>
            {name} {version}
          </li>
        ))}
      </ul>
    </details>
  );
}
