// The hub: REST calls with the token, and the imjoy-rpc websocket connection with reconnection.

import { connectToServer } from "imjoy-rpc/dist/hypha-rpc-websocket.js";

const TOKEN_KEY = "scopeflow.token";

/** Read `?token=` once, keep it for this tab's session and take it out of the address bar. */
export function takeToken(): string | null {
  const url = new URL(window.location.href);
  const fromUrl = url.searchParams.get("token");
  if (fromUrl) {
    sessionStorage.setItem(TOKEN_KEY, fromUrl);
    url.searchParams.delete("token");
    window.history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

export function saveToken(token: string): void {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function forgetToken(): void {
  sessionStorage.removeItem(TOKEN_KEY);
}

export class HubError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** The hub's base URL (the page is served by the hub). */
export const hubUrl = window.location.origin;

export async function request(
  token: string,
  path: string,
  init: RequestInit = {},
): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set("Authorization", `token ${token}`);
  let response: Response;
  try {
    response = await fetch(hubUrl + path, { ...init, headers, cache: "no-store" });
  } catch (err) {
    throw new HubError(`the hub did not answer (${String(err)})`, 0);
  }
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      const body = await response.json();
      message = body.message || body.reason || message;
    } catch {
      /* not JSON */
    }
    throw new HubError(message, response.status);
  }
  return response;
}

export async function getJson<T>(token: string, path: string, init: RequestInit = {}): Promise<T> {
  const response = await request(token, path, init);
  const text = await response.text();
  return (text ? JSON.parse(text) : {}) as T;
}

export function postJson<T>(token: string, path: string, body: unknown): Promise<T> {
  return getJson<T>(token, path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
}

export type ConnectionState = "connecting" | "connected" | "reconnecting" | "refused";

export interface Connection {
  /** the workspace manager (imjoy-rpc): getPlugin, list_services, ... */
  server: any;
  clientId: string;
  close(): Promise<void>;
}

/**
 * Connect to `/ws` and keep connected: after the hub goes away, retry with backoff and call
 * `onConnect` again with the new connection (services must be registered anew).
 */
export function keepConnected(
  token: string,
  onConnect: (connection: Connection) => Promise<void>,
  onState: (state: ConnectionState, detail?: string) => void,
): () => void {
  let stopped = false;
  let current: Connection | null = null;
  const clientId = `app-${Math.random().toString(36).slice(2, 10)}`;

  const attempt = async (delay: number): Promise<void> => {
    if (stopped) return;
    let closed = false;
    let server: any = null;
    const onClose = () => {
      if (closed || stopped) return;
      closed = true;
      // stop the library's own retry loop: we reconnect with a fresh client, at our pace
      server?.rpc?._connection?.disconnect("reconnecting");
      onState("reconnecting", "the hub went away; reconnecting…");
      const old = current;
      current = null;
      if (old) void old.close();
      window.setTimeout(() => void attempt(500), 500);
    };
    // a WebSocket that tells us when an open connection closes
    class WatchedSocket extends WebSocket {
      constructor(url: string | URL, protocols?: string | string[]) {
        super(url, protocols);
        this.binaryType = "arraybuffer";
        let opened = false;
        this.addEventListener("open", () => (opened = true));
        this.addEventListener("close", () => {
          if (opened) onClose();
        });
      }
    }
    try {
      server = await connectToServer({
        server_url: hubUrl,
        token,
        client_id: clientId,
        name: "scopeflow web app",
        method_timeout: 600,
        WebSocketClass: WatchedSocket,
      });
      if (stopped) {
        await server.disconnect();
        return;
      }
      current = {
        server,
        clientId,
        close: async () => {
          closed = true;
          try {
            await server.disconnect();
          } catch {
            /* already gone */
          }
        },
      };
      await onConnect(current);
      onState("connected");
    } catch (err) {
      if (stopped || closed) return;
      const text = String(err);
      closed = true;
      server?.rpc?._connection?.disconnect("retrying");
      onState("reconnecting", `cannot reach the hub (${text}); retrying…`);
      const next = Math.min(delay * 2, 5000);
      window.setTimeout(() => void attempt(next), delay);
    }
  };
  onState("connecting");
  void attempt(500);
  return () => {
    stopped = true;
    if (current) void current.close();
  };
}
