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
  onLost: () => void = () => {},
): () => void {
  let stopped = false;
  let current: Connection | null = null;
  const base = `app-${Math.random().toString(36).slice(2, 10)}`;
  let attempts = 0;

  const attempt = async (delay: number): Promise<void> => {
    if (stopped) return;
    // every attempt is a client of its own: a leftover of an earlier one can never hold our id
    const clientId = `${base}-${attempts++}`;
    let abandoned = false;
    let server: any = null;
    const abandon = () => {
      abandoned = true; // the library's own retries construct sockets: those now throw and stop
      server?.rpc?._connection?.disconnect("abandoned");
    };
    const onClose = () => {
      if (abandoned || stopped) return;
      abandon();
      onLost();
      onState("reconnecting", "the hub went away; reconnecting…");
      current = null;
      window.setTimeout(() => void attempt(500), 500);
    };
    // a WebSocket that says when an open connection closes, and that cannot be reopened once abandoned
    class WatchedSocket extends WebSocket {
      constructor(url: string | URL, protocols?: string | string[]) {
        if (abandoned || stopped) throw new Error("this connection attempt was abandoned");
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
      if (stopped || abandoned) {
        abandon();
        return;
      }
      current = {
        server,
        clientId,
        close: async () => {
          abandon();
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
      if (stopped || abandoned) return;
      abandon();
      onState("reconnecting", `cannot reach the hub (${String(err)}); retrying…`);
      window.setTimeout(() => void attempt(Math.min(delay * 2, 5000)), delay);
    }
  };
  onState("connecting");
  void attempt(500);
  return () => {
    stopped = true;
    if (current) void current.close();
  };
}
