// Which plugins a window or web-worker plugin may reach with `api.getPlugin`/`api.call`: itself, those its
// config lists in `dependencies`, and those the user allowed when asked (once per session and pair).

interface Known {
  id: string;
  name: string;
  dependencies?: string[];
}

/** The plugin a `dependencies` entry names: `owner/repo:Name` or `Name` → `Name`; a URL → its file's name
 * without `.imjoy.html`/`.py`; a trailing `@tag` goes. */
export function dependencyName(entry: string): string {
  let text = String(entry).trim();
  if (/^https?:\/\//i.test(text)) {
    const file = text.split(/[?#]/)[0].split("/").pop() ?? "";
    try {
      text = decodeURIComponent(file);
    } catch {
      text = file;
    }
    return text.replace(/@[^@/]*$/, "").replace(/\.(imjoy\.html|py)$/i, "");
  }
  text = text.replace(/@[^@:/]*$/, "");
  return text.includes(":") ? text.slice(text.lastIndexOf(":") + 1) : text;
}

/** The plugin called `name` (its config's name, else its id), if there is one. */
export function findKnown<T extends Known>(plugins: T[], name: string): T | undefined {
  return plugins.find((p) => p.name === name) ?? plugins.find((p) => p.id === name);
}

/** Whether `caller`'s config lists `target` in its `dependencies` (by name or id), or is `target`. */
export function declares(caller: Known, target: Known): boolean {
  if (caller.id === target.id) return true;
  const named = new Set((caller.dependencies ?? []).map(dependencyName));
  return named.has(target.name) || named.has(target.id);
}

/** The check windowApi makes before it hands out a plugin: declared ones pass, anything else is asked of
 * the user once per session (the answer, yes or no, is remembered); plugins nobody knows are refused. */
export function pluginAccess(
  plugins: () => Known[],
  confirm: (title: string, text: string) => Promise<unknown>,
): (callerId: string, name: string) => Promise<Known> {
  const answers = new Map<string, Promise<boolean>>(); // "caller\ntarget" → the user's answer
  return async (callerId, name) => {
    const all = plugins();
    const caller = all.find((p) => p.id === callerId);
    const target = findKnown(all, String(name));
    if (!caller || !target) throw new Error(`no plugin ${JSON.stringify(String(name)).slice(0, 80)} to use`);
    if (declares(caller, target)) return target;
    const key = `${caller.id}\n${target.id}`;
    let answer = answers.get(key);
    if (!answer) {
      const text = `${caller.name} wants to use the plugin ${target.name} (any of its functions). Allow it until the page is reloaded?`;
      answer = confirm(caller.name, text).then((v) => v === true);
      answers.set(key, answer);
    }
    if (await answer) return target;
    throw new Error(
      `${caller.name} may not use ${target.name}: list it in the plugin's dependencies, or allow it when asked`,
    );
  };
}
