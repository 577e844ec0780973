// The viewer's public surface: the component, its props and test hook, and the image it shows.

export { Viewer, type ViewerHandle, type ViewerProps } from "./Viewer";
export type { DType, NdImage, TypedArray } from "./types";
