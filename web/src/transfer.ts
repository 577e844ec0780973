// Out-of-band arrays for the browser: the JS side of scopeflow's array codec (server/scopeflow/transfer.py).
//
// Install it once on a connection made with imjoy-rpc's hyphaWebsocketClient:
//
//   const server = await hyphaWebsocketClient.connectToServer({ server_url, token });
//   await installArrayCodec(server, { baseUrl: "http://127.0.0.1:9527", token });
//
// From then on every array that arrives — inline (imjoy-rpc's own "ndarray" encoding) or as a handle to
// bytes held by the hub — is an `NdArray` whose `data` is a typed array in this platform's byte order.
// Send an `NdArray` to pass an array: up to `inlineMax` bytes it goes inside the message; above, its bytes
// are uploaded to the hub first and the message carries a small handle, which the receiving kernel maps from
// shared memory or downloads. Up to the size the hub allows (`ws_arrays`), the bytes go on the connection's
// own websocket, just before the message (server/scopeflow/transfer/websocket.py), and the hub pushes the
// arrays of the messages it sends here the same way; larger arrays, and any without an open socket, go over
// HTTP (PUT and GET /api/transfer/NAME; a GET consumes the blob). Frames this client sends say that it reads
// handles, so kernels answer with handles too. No imports: only the browser's (or Node's) fetch and crypto.

export type TypedArray =
  | Int8Array
  | Uint8Array
  | Uint8ClampedArray
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;

/** An n-dimensional array: C-ordered `data` of `shape`, numpy `dtype` name ("float32", "uint16", ...). */
export class NdArray {
  constructor(
    public data: TypedArray,
    public shape: number[],
    public dtype: string,
  ) {}

  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }
}

export interface ArrayCodecOptions {
  /** The hub's HTTP address, e.g. "http://127.0.0.1:9527". */
  baseUrl: string;
  /** The hub's token. */
  token: string;
  /** Arrays up to this many bytes stay inside the message (default: what the hub says, 1 MiB). */
  inlineMax?: number;
  /** Deliver arrays as imjoy-rpc's plain `{_rtype: "ndarray", _rvalue, _rshape, _rdtype}` objects (native
   * byte order, C order) instead of `NdArray`: what code written for the plain client expects. Sending
   * large arrays out of band still takes an `NdArray` (plain objects go inline). */
  plain?: boolean;
}

/** The parts of a hyphaWebsocketClient connection this module touches. */
export interface ArrayCodecServer {
  config: { client_id: string };
  registerCodec(codec: {
    name: string;
    type?: unknown;
    encoder?: (value: never) => unknown;
    decoder?: (value: never) => unknown;
  }): void;
  rpc: {
    _emit_message: (data: Uint8Array) => Promise<unknown>;
    add_service: (api: unknown, overwrite?: boolean) => { config: Record<string, unknown> };
    _connection?: SocketConnection;
  };
}

type MessageHandler = (data: unknown) => unknown;

/** imjoy-rpc's websocket connection, as far as arrays on the socket need it. */
interface SocketConnection {
  _websocket: WebSocket | null;
  _handle_message: MessageHandler;
  on_message: (handler: MessageHandler) => void;
}

// transfer/websocket.py: an upload's header, and a pushed array's header (or alone: "push arrays to me")
const UPLOAD = 0xc1;
const PUSH = 0xc2;
const PUSHED_KEPT_MS = 10 * 60 * 1000; // a pushed array nobody decoded is dropped after this

export const RTYPE = "scopeflow-array";
const MARK = "array_refs";

interface Handle {
  _rtype: string;
  name: string;
  shape: number[];
  dtype: string;
  order?: string;
  nbytes: number;
}

export interface Inline {
  _rtype: string;
  _rvalue: Uint8Array | Uint8Array[];
  _rshape: number[];
  _rdtype: string;
}

type Constructor = {
  new (buffer: ArrayBuffer, offset?: number, length?: number): TypedArray;
  readonly BYTES_PER_ELEMENT: number;
};

// numpy kind + item size → (name, typed array); types JS lacks keep their bytes in an unsigned array
const NAMES: Record<string, [string, Constructor]> = {
  b1: ["bool", Uint8Array],
  i1: ["int8", Int8Array],
  u1: ["uint8", Uint8Array],
  i2: ["int16", Int16Array],
  u2: ["uint16", Uint16Array],
  f2: ["float16", Uint16Array],
  i4: ["int32", Int32Array],
  u4: ["uint32", Uint32Array],
  f4: ["float32", Float32Array],
  i8: ["int64", BigInt64Array],
  u8: ["uint64", BigUint64Array],
  f8: ["float64", Float64Array],
  c8: ["complex64", Float32Array],
  c16: ["complex128", Float64Array],
};
const CODES: Record<string, string> = Object.fromEntries(Object.entries(NAMES).map(([c, [n]]) => [n, c]));

/** Parse "float32" or "<f4" / ">f4" / "|b1": the numpy name, the typed array, item size, big-endian. */
function parseDtype(dtype: string): { name: string; type: Constructor; itemsize: number; swap: boolean } {
  let code = dtype;
  let swap = false;
  if (/^[<>|=]/.test(dtype)) {
    swap = dtype[0] === ">";
    code = dtype.slice(1);
  } else if (dtype in CODES) {
    code = CODES[dtype];
  }
  const entry = NAMES[code];
  if (!entry) throw new Error(`arrays of dtype ${dtype} are not supported here`);
  return { name: entry[0], type: entry[1], itemsize: Number(code.slice(1)), swap };
}

function toNdArray(bytes: Uint8Array, shape: number[], dtype: string): NdArray {
  const { name, type, itemsize, swap } = parseDtype(dtype);
  const size = shape.reduce((a, b) => a * b, 1);
  if (bytes.byteLength !== size * itemsize) {
    throw new Error(`an array of shape [${shape}] and dtype ${dtype} needs ${size * itemsize} bytes, got ${bytes.byteLength}`);
  }
  // a copy only if the bytes are misaligned for their type, or in the other byte order
  let own = bytes;
  if (bytes.byteOffset % type.BYTES_PER_ELEMENT !== 0 || swap) own = bytes.slice();
  if (swap) {
    const width = name.startsWith("complex") ? itemsize / 2 : itemsize;
    for (let i = 0; i < own.length; i += width) own.subarray(i, i + width).reverse();
  }
  const elements = (own.byteLength / type.BYTES_PER_ELEMENT) | 0;
  return new NdArray(new type(own.buffer as ArrayBuffer, own.byteOffset, elements), shape, name);
}

function bytesOf(array: NdArray): Uint8Array {
  return new Uint8Array(array.data.buffer, array.data.byteOffset, array.data.byteLength);
}

function randomHex(bytes: number): string {
  const values = new Uint8Array(bytes);
  globalThis.crypto.getRandomValues(values);
  return Array.from(values, (v) => v.toString(16).padStart(2, "0")).join("");
}

// msgpack("array_refs") followed by msgpack(1)
const STAMP = new Uint8Array([0xa0 | MARK.length, ...Array.from(MARK, (c) => c.charCodeAt(0)), 0x01]);

/** The frame with `array_refs: 1` added to its main part (a msgpack fixmap: one more key, first). */
export function stamp(frame: Uint8Array): Uint8Array {
  if (frame.length === 0 || frame[0] < 0x80 || frame[0] >= 0x8f) return frame;
  const out = new Uint8Array(frame.length + STAMP.length);
  out[0] = frame[0] + 1;
  out.set(STAMP, 1);
  out.set(frame.subarray(1), 1 + STAMP.length);
  return out;
}

export interface ArrayCodec {
  /** How many array bytes went to and came from the hub, through its HTTP doors or on the websocket. */
  uploaded: number;
  downloaded: number;
  /** Of those, how many bytes went and came on the websocket. */
  socketUploaded: number;
  socketDownloaded: number;
}

/** Arrays on the connection's websocket: a sender, and the arrays the hub pushed, by name; null where the
 * connection is not imjoy-rpc's websocket one. */
function socketArrays(connection: SocketConnection | undefined) {
  if (!connection || typeof connection.on_message !== "function" || !("_websocket" in connection)) return null;
  const pushed = new Map<string, { bytes: Uint8Array; at: number }>();
  let next: string | null = null; // the name of the pushed array whose bytes come next
  const wrap =
    (handler: MessageHandler): MessageHandler =>
    (data: unknown) => {
      if (next !== null && data instanceof ArrayBuffer) {
        const now = Date.now();
        for (const [name, kept] of pushed) if (now - kept.at > PUSHED_KEPT_MS) pushed.delete(name);
        pushed.set(next, { bytes: new Uint8Array(data), at: now });
        next = null;
        return undefined;
      }
      if (data instanceof ArrayBuffer && data.byteLength > 1 && new Uint8Array(data, 0, 1)[0] === PUSH) {
        next = String.fromCharCode(...new Uint8Array(data, 1));
        return undefined;
      }
      return handler(data);
    };
  connection._handle_message = wrap(connection._handle_message);
  const onMessage = connection.on_message.bind(connection);
  connection.on_message = (handler: MessageHandler) => onMessage(wrap(handler));
  const open = () => {
    const ws = connection._websocket;
    return ws && ws.readyState === 1 ? ws : null; // WebSocket.OPEN (no WebSocket global in Node)
  };
  open()?.send(new Uint8Array([PUSH]));
  return {
    /** Send an array's bytes ahead of the message naming it; false when the socket is not open. */
    send(name: string, bytes: Uint8Array<ArrayBuffer>): boolean {
      const ws = open();
      if (!ws) return false;
      const header = new Uint8Array(1 + name.length);
      header[0] = UPLOAD;
      for (let i = 0; i < name.length; i++) header[i + 1] = name.charCodeAt(i);
      ws.send(header);
      ws.send(bytes);
      return true;
    },
    take(name: string): Uint8Array | null {
      const kept = pushed.get(name);
      if (!kept) return null;
      pushed.delete(name);
      return kept.bytes;
    },
  };
}

/** Install the array codec on a connection; resolves to null if the hub does not offer out-of-band arrays
 * (arrays then travel inline, still as `NdArray`). */
export async function installArrayCodec(
  server: ArrayCodecServer,
  options: ArrayCodecOptions,
): Promise<ArrayCodec | null> {
  const base = options.baseUrl.replace(/\/+$/, "");
  const headers = { Authorization: `token ${options.token}` };
  const stats: ArrayCodec = { uploaded: 0, downloaded: 0, socketUploaded: 0, socketDownloaded: 0 };
  let prefix = "";
  let inlineMax = options.inlineMax ?? 1 << 20;
  let socketMax = 0;
  try {
    const clientId = encodeURIComponent(server.config.client_id);
    const response = await fetch(`${base}/api/transfer?client_id=${clientId}`, { headers });
    if (!response.ok) throw new Error(`${response.status} ${await response.text()}`);
    const info = await response.json();
    prefix = info.prefix;
    inlineMax = options.inlineMax ?? info.inline_max ?? inlineMax;
    socketMax = typeof info.ws_arrays === "number" ? info.ws_arrays : 0;
  } catch (error) {
    console.info("no out-of-band arrays from the hub:", error);
  }
  const socket = prefix && socketMax > 0 ? socketArrays(server.rpc._connection) : null;

  const encode = async (array: NdArray): Promise<Inline | Handle> => {
    const bytes = bytesOf(array);
    if (!prefix || bytes.byteLength <= inlineMax) {
      return { _rtype: "ndarray", _rvalue: bytes, _rshape: array.shape, _rdtype: array.dtype };
    }
    const code = CODES[array.dtype];
    if (!code) throw new Error(`arrays of dtype ${array.dtype} are not supported here`);
    const name = prefix + randomHex(16);
    // neither fetch nor WebSocket.send takes a view of a SharedArrayBuffer: such data is copied first
    const body = bytes.buffer instanceof ArrayBuffer ? (bytes as Uint8Array<ArrayBuffer>) : bytes.slice();
    if (socket && bytes.byteLength <= socketMax && socket.send(name, body)) {
      stats.socketUploaded += bytes.byteLength;
    } else {
      const response = await fetch(`${base}/api/transfer/${name}`, { method: "PUT", headers, body });
      if (response.status !== 201) throw new Error(`could not upload an array: ${response.status} ${await response.text()}`);
    }
    stats.uploaded += bytes.byteLength;
    const dtype = (code.startsWith("b") || code.endsWith("1") ? "|" : "<") + code;
    return { _rtype: RTYPE, name, shape: array.shape, dtype, order: "C", nbytes: bytes.byteLength };
  };

  const decodeInline = (value: Inline): NdArray => {
    const parts = Array.isArray(value._rvalue) ? value._rvalue : [value._rvalue];
    let bytes = parts[0] ?? new Uint8Array(0);
    if (parts.length > 1) {
      bytes = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
      let at = 0;
      for (const part of parts) {
        bytes.set(part, at);
        at += part.byteLength;
      }
    }
    return toNdArray(bytes, value._rshape, value._rdtype);
  };

  const decodeHandle = async (handle: Handle): Promise<NdArray | Inline> => {
    if (typeof handle.name !== "string" || !/^sf-[0-9a-f-]+$/.test(handle.name)) {
      throw new Error(`not an array handle: bad name ${JSON.stringify(handle.name)}`);
    }
    let bytes = socket?.take(handle.name) ?? null;
    if (bytes) {
      stats.socketDownloaded += bytes.byteLength;
    } else {
      const response = await fetch(`${base}/api/transfer/${handle.name}`, { headers });
      if (response.status === 404) throw new Error(`array ${handle.name} is gone: read already, or its sender went away`);
      if (!response.ok) throw new Error(`could not download array ${handle.name}: ${response.status}`);
      bytes = new Uint8Array(await response.arrayBuffer());
    }
    stats.downloaded += bytes.byteLength;
    if (bytes.byteLength !== handle.nbytes) {
      throw new Error(`array ${handle.name} is truncated: ${bytes.byteLength} of ${handle.nbytes} bytes`);
    }
    let array = toNdArray(bytes, handle.shape, handle.dtype);
    if (handle.order === "F" && handle.shape.length > 1) array = fromFortran(array);
    return options.plain ? plainOf(array) : array;
  };

  if (options.plain) {
    server.registerCodec({ name: "ndarray", type: NdArray, encoder: encode });
  } else {
    server.registerCodec({ name: "ndarray", type: NdArray, encoder: encode, decoder: decodeInline });
  }
  server.registerCodec({ name: RTYPE, decoder: decodeHandle });
  if (prefix) {
    const rpc = server.rpc;
    const emit = rpc._emit_message;
    rpc._emit_message = (data: Uint8Array) => emit(stamp(data));
    const addService = rpc.add_service.bind(rpc);
    rpc.add_service = (api: unknown, overwrite?: boolean) => {
      const service = addService(api, overwrite);
      service.config[MARK] = 1;
      return service;
    };
  }
  return stats;
}

/** imjoy-rpc's plain encoding of an array. */
export function plainOf(array: NdArray): Inline {
  return { _rtype: "ndarray", _rvalue: bytesOf(array), _rshape: array.shape, _rdtype: array.dtype };
}

/** A Fortran-ordered array's elements in C order (same shape). */
function fromFortran(array: NdArray): NdArray {
  const { shape, data } = array;
  const width = array.dtype.startsWith("complex") ? 2 : 1;
  const out = new (data.constructor as new (n: number) => TypedArray)(data.length);
  const n = shape.length;
  const fStrides = new Array<number>(n);
  let stride = 1;
  for (let d = 0; d < n; d++) {
    fStrides[d] = stride;
    stride *= shape[d];
  }
  const index = new Array<number>(n).fill(0);
  for (let c = 0; c < array.size; c++) {
    let f = 0;
    for (let d = 0; d < n; d++) f += index[d] * fStrides[d];
    for (let w = 0; w < width; w++) (out as Float64Array)[c * width + w] = (data as Float64Array)[f * width + w];
    for (let d = n - 1; d >= 0; d--) {
      if (++index[d] < shape[d]) break;
      index[d] = 0;
    }
  }
  return new NdArray(out, shape, array.dtype);
}
