// bioimage.io model packages in the install dialog: preview a zip (picked, dropped or from a URL) with its
// architecture code, axes, weights and licence, then install exactly that package by its sha256.

import { request } from "../hub";
import { get } from "../store";

export interface ModelPreview {
  kind: "model-package";
  id: string;
  name: string;
  version: string;
  description: string;
  format_version: string;
  sha256: string;
  authors: string[];
  license: string;
  cite: string[];
  tags: string[];
  weights: string[];
  inputs: { id: string; axes: string }[];
  outputs: { id: string; axes: string; channels: string[] }[];
  requirements: string[];
  code: string | null;
  files: string[];
  source_url: string | null;
}

/** A model package's URL (a zoo page's download link ends in .zip). */
export function isPackageUrl(url: string): boolean {
  try {
    return /\.zip$/i.test(new URL(url).pathname);
  } catch {
    return false;
  }
}

export async function previewPackage(source: File | string): Promise<ModelPreview> {
  const token = get().token || "";
  const init: RequestInit =
    typeof source === "string"
      ? { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ url: source }) }
      : { method: "POST", headers: { "Content-Type": "application/zip" }, body: source };
  const response = await request(token, "/api/models/preview", init);
  return (await response.json()) as ModelPreview;
}

export async function installPackage(preview: ModelPreview): Promise<void> {
  const token = get().token || "";
  await request(token, "/api/models/install", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ sha256: preview.sha256, source_url: preview.source_url }),
  });
}

export function ModelPreviewCard({ model, replaces }: { model: ModelPreview; replaces?: string }) {
  return (
    <div className="sf-preview" data-testid="model-preview-card">
      <div className="sf-plugin-title">
        <h2>{model.name}</h2>
        <span className="sf-muted">
          {model.version} · bioimage.io model (format {model.format_version}) · id <code>{model.id}</code>
        </span>
      </div>
      <p>{model.description}</p>
      {replaces && (
        <div className="sf-warning" data-testid="install-replaces">
          This replaces the installed {replaces}, which has the same id.
        </div>
      )}
      <div className="sf-small">
        input: <code>{model.inputs.map((i) => `${i.id} (${i.axes})`).join(", ")}</code> → output:{" "}
        <code>{model.outputs.map((o) => `${o.id} (${o.axes}${o.channels.length > 1 ? `: ${o.channels.join(", ")}` : ""})`).join(", ")}</code>
      </div>
      <div className="sf-small">weights: {model.weights.join(", ")} (runs {model.weights[0]})</div>
      <div className="sf-small">
        authors: {model.authors.join(", ") || "not given"} · licence: {model.license || "not given"}
      </div>
      {model.cite.length > 0 && <div className="sf-small">cite: {model.cite.join(" · ")}</div>}
      <div className="sf-small">runs with: {model.requirements.join(", ")}</div>
      {model.source_url && <div className="sf-small">source: {model.source_url}</div>}
      <div className="sf-small sf-muted">sha256 {model.sha256}</div>
      {model.code && (
        <details data-testid="model-code">
          <summary>Architecture code (runs when the state-dict weights are used)</summary>
          <pre className="sf-code">{model.code}</pre>
        </details>
      )}
      <div className="sf-warning">
        Nothing from this package has run. Installing lets its weights{model.code ? " and code" : ""} run on this computer
        with your permissions: install only models from people you trust.
      </div>
    </div>
  );
}
