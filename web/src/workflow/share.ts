// A workflow inside a link: `#workflow=` the base64url of its deflate-raw compressed JSON (no server needed).

import { checkShape, type WorkflowDoc } from "./doc";

async function pipe(bytes: Uint8Array, stream: CompressionStream | DecompressionStream): Promise<Uint8Array> {
  const out = new Blob([bytes as BlobPart]).stream().pipeThrough(stream);
  return new Uint8Array(await new Response(out).arrayBuffer());
}

function toBase64Url(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64Url(text: string): Uint8Array {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

export async function encodeDoc(doc: WorkflowDoc): Promise<string> {
  const json = new TextEncoder().encode(JSON.stringify(doc));
  return toBase64Url(await pipe(json, new CompressionStream("deflate-raw")));
}

export async function decodeDoc(fragment: string): Promise<WorkflowDoc> {
  let text: string;
  try {
    text = new TextDecoder().decode(await pipe(fromBase64Url(fragment.trim()), new DecompressionStream("deflate-raw")));
  } catch {
    throw new Error("the workflow link is damaged (it did not decompress): ask for the link again");
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error("the workflow link is damaged (not JSON): ask for the link again");
  }
  return checkShape(value);
}

/** This app's address with the workflow in its fragment. */
export async function shareLink(doc: WorkflowDoc): Promise<string> {
  return `${window.location.origin}${window.location.pathname}#workflow=${await encodeDoc(doc)}`;
}

/** What the address asks to open: `#workflow=…` (the document itself) or `?workflow=URL` (a file to fetch). */
export function linkedWorkflow(): { fragment: string } | { url: string } | null {
  const hash = window.location.hash;
  if (hash.startsWith("#workflow=")) return { fragment: hash.slice("#workflow=".length) };
  const url = new URL(window.location.href).searchParams.get("workflow");
  return url ? { url } : null;
}

/** Take the workflow out of the address once it is open (a reload must not open it again over edits). */
export function forgetLink() {
  const url = new URL(window.location.href);
  url.searchParams.delete("workflow");
  const hash = url.hash.startsWith("#workflow=") ? "" : url.hash;
  window.history.replaceState(null, "", url.pathname + url.search + hash);
}
