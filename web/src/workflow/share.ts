// A workflow inside a link: `#workflow=` the base64url of its deflate-raw compressed JSON (no server needed).

import { checkShape, type WorkflowDoc } from "./doc";

/** The most a link may unpack to: a workflow is a few kB; a small link must not unpack to gigabytes. */
export const MAX_LINK_DOC_BYTES = 4 * 1024 * 1024;

class TooLarge extends Error {}

async function pipe(bytes: Uint8Array, stream: CompressionStream | DecompressionStream): Promise<Uint8Array> {
  const out = new Blob([bytes as BlobPart]).stream().pipeThrough(stream);
  return new Uint8Array(await new Response(out).arrayBuffer());
}

/** Inflate, stopping as soon as the output passes ``limit`` bytes. */
async function inflate(bytes: Uint8Array, limit: number): Promise<Uint8Array> {
  const reader = new Blob([bytes as BlobPart]).stream().pipeThrough(new DecompressionStream("deflate-raw")).getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > limit) {
      await reader.cancel().catch(() => undefined);
      throw new TooLarge();
    }
    parts.push(value);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
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
    text = new TextDecoder().decode(await inflate(fromBase64Url(fragment.trim()), MAX_LINK_DOC_BYTES));
  } catch (error) {
    if (error instanceof TooLarge) {
      const mib = MAX_LINK_DOC_BYTES / 1024 / 1024;
      throw new Error(`the workflow link unpacks to more than ${mib} MiB, far more than any workflow: ask for the workflow file instead`);
    }
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
