// scopeflow loads nothing from the internet. ImJoy plugins often do (a library from a CDN in `<script src>`, a
// stylesheet in `<link href>`, script URLs in `requirements`, `createWindow({src: "https://..."})`): these
// find such URLs so the app can say so, instead of opening a window that is silently broken.
// Pure functions (no DOM, no store) so that they are tested on their own.

/** Where a URL a plugin names points: a file of the hub's, another origin (the internet), or neither. */
export function whereIs(value: string, hubOrigin: string): "hub" | "outside" | "other" {
  let url: URL;
  try {
    url = new URL(value.trim(), `${hubOrigin}/window.html`);
  } catch {
    return "other";
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return "other"; // data:, blob:, javascript:
  return url.origin === hubOrigin ? "hub" : "outside";
}

const SCRIPT_SRC = /<script\b[^>]*?\bsrc\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))[^>]*>[\s\S]*?<\/script\s*>/gi;
const LINK_HREF = /<link\b[^>]*?\bhref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))[^>]*>/gi;

/** A window's html without the `<script src>` and `<link href>` that point at another origin, and those URLs. */
export function dropOutside(html: string, hubOrigin: string): { html: string; outside: string[] } {
  const outside: string[] = [];
  const drop = (tag: string, a?: string, b?: string, c?: string) => {
    const url = a ?? b ?? c ?? "";
    if (whereIs(url, hubOrigin) !== "outside") return tag;
    outside.push(url);
    return `<!-- not loaded (no internet): ${url.replace(/--/g, "- -")} -->`;
  };
  const cleaned = html
    .replace(SCRIPT_SRC, (tag, a, b, c) => drop(tag, a, b, c))
    .replace(LINK_HREF, (tag, a, b, c) => drop(tag, a, b, c));
  return { html: cleaned, outside };
}

/** A JavaScript plugin's requirements (ImJoy: script or stylesheet URLs, `js:`/`css:`/`cache:` prefixes):
 * the hub's files to load, and the URLs on the internet that are not loaded. Python-style names are ignored. */
export function browserRequirements(
  requirements: readonly string[],
  hubOrigin: string,
): { scripts: string[]; styles: string[]; outside: string[] } {
  const scripts: string[] = [];
  const styles: string[] = [];
  const outside: string[] = [];
  for (const raw of requirements) {
    const text = String(raw).trim();
    const prefix = /^(js|css|cache):/i.exec(text)?.[1]?.toLowerCase();
    const value = prefix ? text.slice(prefix.length + 1).trim() : text;
    const url = /^(https?:)?\/\//i.test(value) || value.startsWith("/") ? value : null;
    if (!url || prefix === "cache") continue; // pip names, repo:, ... are for Python; cache: only caches
    const where = whereIs(url, hubOrigin);
    if (where === "outside") outside.push(url);
    else if (where === "hub") (prefix === "css" || /\.css(\?|#|$)/i.test(url) ? styles : scripts).push(url);
  }
  return { scripts, styles, outside };
}

/** The message the app shows for a plugin that would load files from the internet. */
export function offlineMessage(plugin: string, urls: readonly string[]): string {
  const shown = urls.slice(0, 3).join(", ") + (urls.length > 3 ? ` and ${urls.length - 3} more` : "");
  return `${plugin} loads ${shown} from the internet, which scopeflow does not do: ship the file with the plugin`;
}

/** A web-worker plugin reaching for a page it does not have: the browser's words, and what they mean. */
export function explainWorkerError(plugin: string, message: string): string {
  const missing = /\b(document|window|localStorage|sessionStorage|alert)\b is not defined/.exec(message)?.[1];
  if (!missing) return `${plugin}: ${message}`;
  return (
    `${plugin} is a web-worker plugin: it runs in a Web Worker, which has no ${missing === "document" ? "document (no page, no DOM)" : missing}` +
    ` (${message}). Make it a window plugin (type: window) if it needs a page.`
  );
}

/** `data:` URL → its bytes and media type (the app's policy lets it fetch only from the hub). */
export function decodeDataUrl(url: string): { type: string; bytes: Uint8Array } | null {
  const m = /^data:([^;,]*)((?:;[^;,]*)*),(.*)$/is.exec(url);
  if (!m) return null;
  const type = m[1] || "text/plain";
  if (/;base64/i.test(m[2])) {
    const binary = atob(m[3].replace(/\s+/g, ""));
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return { type, bytes };
  }
  return { type, bytes: new TextEncoder().encode(decodeURIComponent(m[3])) };
}
