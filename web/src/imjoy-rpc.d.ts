// The parts of the npm imjoy-rpc 0.5.59 bundles the app uses (they ship no usable types for these paths).
declare module "imjoy-rpc/dist/hypha-rpc-websocket.js" {
  export function connectToServer(config: {
    server_url: string;
    token?: string;
    client_id?: string;
    name?: string;
    method_timeout?: number;
    WebSocketClass?: unknown;
  }): Promise<any>;
}
declare module "imjoy-rpc/dist/imjoy-rpc.js" {
  export class RPC {
    constructor(connection: unknown, config: Record<string, unknown>, codecs?: Record<string, unknown>);
    setInterface(api: unknown, config?: Record<string, unknown>): Promise<void>;
    sendInterface(): void;
    requestRemote(): void;
    getRemote(): any;
    on(event: string, handler: (...args: any[]) => void): void;
    once(event: string, handler: (...args: any[]) => void): void;
    disconnect(): void;
  }
}
