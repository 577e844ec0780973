// An n-dimensional image held by the web app, as it travels over imjoy-rpc (see images.ts).

export type DType =
  | "bool" | "uint8" | "int8" | "uint16" | "int16" | "uint32" | "int32" | "float32" | "float64";

export type TypedArray =
  | Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array | Float32Array | Float64Array;

export interface NdImage {
  id: string;
  name: string;
  /** pixels in C order; data.length is the product of shape */
  data: TypedArray;
  shape: number[];
  dtype: DType;
  /** one letter per dimension, in the order "tczyx" (e.g. "yx", "cyx", "zyx", "czyx", "tczyx") */
  axes: string;
  /** "labels": an instance label image (0 = background), shown as a coloured overlay */
  kind: "image" | "labels";
  /** names of the channels along "c", when known (e.g. from OME metadata) */
  channelNames?: string[];
  /** where it came from: a sample, a file, or "<plugin>.<op>" */
  source?: string;
  /** labels (int32) the viewer lets the user paint, over the image they were made for */
  editable?: boolean;
}
