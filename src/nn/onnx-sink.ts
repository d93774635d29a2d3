/**
 * Where a module writes itself as ONNX nodes (export/ implements it). Modules name their weights by
 * state-dict key, so the exporter adds them as initializers from the checkpoint without copies.
 */
export type OnnxAttr = number | string | number[] | { floats: number[] };

export interface OnnxSink {
  /** Adds a node named `nodeName`; returns the name of its output value. */
  node(op: string, nodeName: string, inputs: string[], attrs?: Record<string, OnnxAttr>): string;
  /** The initializer name of the weight with this state-dict key. */
  w(key: string): string;
  /** A small int64 / float constant tensor (1-d). */
  int64(constName: string, values: number[]): string;
  float(constName: string, values: number[]): string;
}

/** A module that can write its forward pass as ONNX nodes; `prefix` is its state-dict prefix ('' or 'a.b.'). */
export interface OnnxWritable {
  onnx(g: OnnxSink, x: string, prefix: string): string;
}
