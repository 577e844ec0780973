// The ImJoy config field `dependencies` when a plugin is installed from a URL: what each entry is, whether it
// is installed already, and whether the hub may fetch it for a preview without asking the user first.
// Nothing here fetches or runs anything: the install dialog previews each URL through the hub's preview path.

import { dependencyName, findKnown } from "./pluginAccess";

/** Loopback and private-network addresses are fetched only after the user says so. */
export function isLocalAddress(url: string): boolean {
  try {
    const host = new URL(url).hostname.replace(/^\[|\]$/g, "");
    return (
      host === "localhost" ||
      host.endsWith(".local") ||
      /^127\./.test(host) ||
      /^10\./.test(host) ||
      /^192\.168\./.test(host) ||
      /^172\.(1[6-9]|2\d|3[01])\./.test(host) ||
      /^169\.254\./.test(host) ||
      host === "::1" ||
      /^f[cd]/i.test(host) ||
      host === "0.0.0.0"
    );
  } catch {
    return false;
  }
}

/** One `dependencies` entry: a plugin file's URL, GitHub shorthand `owner/repo:Name`, or a plain name. */
export type Dependency =
  | { kind: "url"; entry: string; url: string; name: string }
  | { kind: "github"; entry: string; repo: string; name: string }
  | { kind: "name"; entry: string; name: string };

export function parseDependency(entry: string): Dependency {
  const text = String(entry).trim();
  if (/^https?:\/\//i.test(text)) return { kind: "url", entry: text, url: text, name: dependencyName(text) };
  const github = /^([\w.-]+\/[\w.-]+)(?:@[\w./-]+)?:(.+)$/.exec(text);
  if (github) return { kind: "github", entry: text, repo: github[1], name: dependencyName(text) };
  return { kind: "name", entry: text, name: dependencyName(text) };
}

/** The entries of a config's `dependencies`, blanks and repeats left out. */
export function parseDependencies(entries: readonly unknown[] | null | undefined): Dependency[] {
  const seen = new Set<string>();
  const out: Dependency[] = [];
  for (const raw of entries ?? []) {
    if (typeof raw !== "string" || !raw.trim()) continue;
    const dep = parseDependency(raw);
    const key = dep.kind === "url" ? rawUrl(dep.url) : dep.entry;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(dep);
  }
  return out;
}

/** What the hub fetches for a dependency's preview: a URL, or GitHub shorthand it looks up; null for a name. */
export function fetchTarget(dep: Dependency): string | null {
  return dep.kind === "url" ? dep.url : dep.kind === "github" ? dep.entry : null;
}

/** The raw-content URL the hub fetches (as `normalize_url` in plugins/registry.py does for GitHub `blob` pages),
 * so that a dependency is recognised as installed whichever form its URL is written in. */
export function rawUrl(url: string): string {
  try {
    const parts = new URL(url.trim());
    const segments = parts.pathname.split("/").filter(Boolean);
    if (/^(www\.)?github\.com$/i.test(parts.hostname) && segments.length >= 5 && ["blob", "raw"].includes(segments[2])) {
      const [owner, repo, , ...rest] = segments;
      return `https://raw.githubusercontent.com/${owner}/${repo}/${rest.join("/")}`;
    }
    return parts.href;
  } catch {
    return url.trim();
  }
}

interface Installed {
  id: string;
  name: string;
  version?: string;
  sha256?: string;
  source_url?: string | null;
}

/** What the dialog shows for an entry before anything is fetched. `fetch` says how to preview a URL:
 * `public_only` true (the hub refuses private addresses), false (the user already confirmed this host), or
 * null: it points into the user's own network and is fetched only when the user presses its button. */
export type FirstLook =
  | { state: "installed"; plugin: Installed }
  | { state: "unavailable"; message: string }
  | { state: "fetch"; publicOnly: boolean | null };

export function firstLook(
  dep: Dependency,
  plugins: Installed[],
  main: { url: string; publicOnly: boolean },
): FirstLook {
  if (dep.kind === "url") {
    const wanted = rawUrl(dep.url);
    const plugin = plugins.find((p) => p.source_url && rawUrl(p.source_url) === wanted);
    if (plugin) return { state: "installed", plugin };
    if (!isLocalAddress(dep.url)) return { state: "fetch", publicOnly: true };
    // the user let the hub fetch the main plugin from this very host: its neighbours come from there too
    return { state: "fetch", publicOnly: !main.publicOnly && sameOrigin(dep.url, main.url) ? false : null };
  }
  const plugin = findKnown(plugins, dep.name);
  if (plugin) return { state: "installed", plugin };
  // the hub looks it up in the repository's manifest.imjoy.json on GitHub, then previews its file
  if (dep.kind === "github") return { state: "fetch", publicOnly: true };
  return {
    state: "unavailable",
    message: `no plugin called "${dep.name}" is installed, and a name alone does not say where to get it: install it first`,
  };
}

/** After a dependency's preview: the same file installed already, or an installed plugin it would replace. */
export function compareInstalled(
  preview: { id: string; sha256: string },
  plugins: Installed[],
): { same?: Installed; replaces?: Installed } {
  const same = plugins.find((p) => p.sha256 === preview.sha256 && p.id === preview.id);
  if (same) return { same };
  const replaces = plugins.find((p) => p.id === preview.id);
  return replaces ? { replaces } : {};
}

function sameOrigin(a: string, b: string): boolean {
  try {
    return new URL(a).origin === new URL(b).origin;
  } catch {
    return false;
  }
}
