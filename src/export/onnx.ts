/**
 * ONNX export of the UNet, written from the state dict (no tracing): opset 17, IR 8, dynamic
 * batch/height/width, the reference's graph (Conv, BatchNormalization, Relu, MaxPool,
 * ConvTranspose or Resize(linear, align_corners), Pad, Concat). Initializers are named by their
 * state-dict keys.
 *
 * Memory: the small messages (nodes, inputs, metadata, each tensor's header) are encoded with
 * protobufjs; the weights are written as they are, straight from the checkpoint's buffers, as
 * slices of the file (a length-delimited field only needs its length up front). So exporting
 * costs the headers plus fp32 copies of non-fp32 weights only.
 */
import protobuf from 'protobufjs';
import type { RawTensor } from '../io/pth.js';
import type { OnnxSink } from '../nn/index.js';
import type { RunnableMetadata } from '../model/card.js';
import { writeFileAtomic } from '../io/files.js';
import { EncoderUNet, REFERENCE_DEPTH, type UNetArgs, hasEncoder } from '../model/index.js';
import { AttributeType, DataType, GraphProto, ModelProto, TensorProto } from './onnx-schema.js';

export const OPSET = 17;
export const IR_VERSION = 8;
export const INPUT_NAME = 'input';
export const OUTPUT_NAME = 'logits';
/** An ensemble's output: the mean of the members' softmax (sigmoid for 1 output), [batch, K, H, W]. */
export const ENSEMBLE_OUTPUT_NAME = 'probabilities';

/** Carried in the file's metadata_props (strings) and in the web folder's model.json. */
export interface OnnxMetadata extends RunnableMetadata {
  /** An ensemble's output, in words: its name, shape and meaning (a single model's is `logits`) */
  output?: string;
  /** An ensemble's checkpoints (file names), as a JSON list */
  models?: string;
}

type Attr = number | string | number[] | { floats: number[] };
interface NodeSpec {
  op_type: string;
  input: string[];
  output: string[];
  name: string;
  attribute: Record<string, unknown>[];
}

/**
 * A tiny graph builder: each node is named after its module and outputs `<name>_out`. `prefix`
 * goes before every node, constant and weight name (an ensemble's member i: `m<i>.`).
 */
export class Graph implements OnnxSink {
  readonly nodes: NodeSpec[] = [];
  /** Small constant tensors (int64 shapes, scales), encoded inline. */
  readonly constants: { name: string; dims: number[]; data_type: number; raw_data: Uint8Array }[] = [];
  prefix = '';

  /** A weight's initializer name: its state-dict key, prefixed. */
  w(key: string): string {
    return this.prefix + key;
  }

  node(op: string, nodeName: string, inputs: string[], attrs: Record<string, Attr> = {}): string {
    const name = this.prefix + nodeName;
    const out = `${name}_out`;
    const attribute = Object.entries(attrs).map(([k, v]) => {
      if (typeof v === 'string') return { name: k, type: AttributeType.STRING, s: Buffer.from(v) };
      if (typeof v === 'number') return { name: k, type: Number.isInteger(v) ? AttributeType.INT : AttributeType.FLOAT, ...(Number.isInteger(v) ? { i: v } : { f: v }) };
      if (Array.isArray(v)) return { name: k, type: AttributeType.INTS, ints: v };
      return { name: k, type: AttributeType.FLOATS, floats: v.floats };
    });
    this.nodes.push({ op_type: op, input: inputs, output: [out], name, attribute });
    return out;
  }

  int64(constName: string, values: number[]): string {
    const name = this.prefix + constName;
    this.constants.push({ name, dims: [values.length], data_type: DataType.INT64, raw_data: new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer) });
    return name;
  }

  float(constName: string, values: number[]): string {
    const name = this.prefix + constName;
    this.constants.push({ name, dims: [values.length], data_type: DataType.FLOAT, raw_data: new Uint8Array(Float32Array.from(values).buffer) });
    return name;
  }
}

/** (Conv 3x3 => BatchNormalization => Relu) * 2; `prefix` is the DoubleConv's state-dict prefix. */
function doubleConv(g: Graph, x: string, prefix: string): string {
  for (const [conv, bn] of [
    [0, 1],
    [3, 4],
  ]) {
    x = g.node('Conv', `${prefix}.${conv}`, [x, g.w(`${prefix}.${conv}.weight`)], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] });
    const p = `${prefix}.${bn}`;
    x = g.node('BatchNormalization', p, [x, ...['weight', 'bias', 'running_mean', 'running_var'].map((k) => g.w(`${p}.${k}`))], { epsilon: 1e-5 });
    x = g.node('Relu', `${prefix}.${bn}.relu`, [x]);
  }
  return x;
}

/**
 * Up: upsample x1, pad it to the skip's size (F.pad with diff//2 before, the rest after), concat
 * [skip, up], DoubleConv. The padding is 7 nodes: d = Shape(skip)[2:] - Shape(up)[2:], half = d/2.
 */
function up(g: Graph, x1: string, skip: string, name: string, bilinear: boolean): string {
  const u = bilinear
    ? g.node('Resize', `${name}.up`, [x1, '', g.float(`${name}.up.scales`, [1, 1, 2, 2])], { mode: 'linear', coordinate_transformation_mode: 'align_corners' })
    : g.node('ConvTranspose', `${name}.up`, [x1, g.w(`${name}.up.weight`), g.w(`${name}.up.bias`)], { kernel_shape: [2, 2], strides: [2, 2] });
  const skipHW = g.node('Shape', `${name}.pad.skip_hw`, [skip], { start: 2 });
  const upHW = g.node('Shape', `${name}.pad.up_hw`, [u], { start: 2 });
  const d = g.node('Sub', `${name}.pad.diff`, [skipHW, upHW]);
  const half = g.node('Div', `${name}.pad.half`, [d, g.int64(`${name}.pad.two`, [2])]);
  const rest = g.node('Sub', `${name}.pad.rest`, [d, half]);
  const zeros = g.int64(`${name}.pad.zeros`, [0, 0]);
  const pads = g.node('Concat', `${name}.pad.pads`, [zeros, half, zeros, rest], { axis: 0 });
  const padded = g.node('Pad', `${name}.pad`, [u, pads]);
  const cat = g.node('Concat', `${name}.cat`, [skip, padded], { axis: 1 });
  return doubleConv(g, cat, `${name}.conv.double_conv`);
}

/** The reference UNet's forward (unet_model.py, `depth` down stages) as ONNX nodes; returns the logits' name. */
function unetBody(g: Graph, bilinear: boolean, depth: number): string {
  const x1 = doubleConv(g, INPUT_NAME, 'inc.double_conv');
  const skips = [x1];
  let x = x1;
  for (let i = 1; i <= depth; i++) {
    x = g.node('MaxPool', `down${i}.maxpool_conv.0`, [x], { kernel_shape: [2, 2], strides: [2, 2] });
    x = doubleConv(g, x, `down${i}.maxpool_conv.1.double_conv`);
    skips.push(x);
  }
  for (let i = 1; i <= depth; i++) x = up(g, x, skips[depth - i], `up${i}`, bilinear);
  return g.node('Conv', 'outc.conv', [x, g.w('outc.conv.weight'), g.w('outc.conv.bias')], { kernel_shape: [1, 1] });
}

/**
 * The model of `args` as ONNX nodes on `input`; returns the logits' name. An encoder UNet writes
 * itself (model.onnx): it is built for that only, its own weights unused (the checkpoint's are the initializers).
 */
function modelBody(g: Graph, a: UNetArgs): string {
  if (!hasEncoder(a)) return unetBody(g, a.bilinear, a.depth ?? REFERENCE_DEPTH);
  const m = new EncoderUNet(a);
  try {
    return m.onnx(g, INPUT_NAME);
  } finally {
    m.dispose();
  }
}

function unetGraph(args: UNetArgs): Graph {
  const g = new Graph();
  modelBody(g, args);
  g.nodes[g.nodes.length - 1].output = [OUTPUT_NAME]; // the graph's output, named plainly
  return g;
}

/** Members' UNets side by side on one input; Softmax (Sigmoid for 1 output) of each, summed, times 1/M. */
function ensembleGraph(members: readonly UNetArgs[]): Graph {
  const g = new Graph();
  const probs = members.map((a, i) => {
    g.prefix = `m${i}.`;
    const logits = modelBody(g, a);
    return a.nClasses === 1 ? g.node('Sigmoid', 'sigmoid', [logits]) : g.node('Softmax', 'softmax', [logits], { axis: 1 });
  });
  g.prefix = '';
  const sum = g.node('Sum', 'ensemble.sum', probs);
  g.node('Mul', 'ensemble.mean', [sum, g.float('ensemble.inv_count', [1 / members.length])]);
  g.nodes[g.nodes.length - 1].output = [ENSEMBLE_OUTPUT_NAME];
  return g;
}

/** A weight as little-endian float32 bytes: fp32 as it is (no copy), other float types converted. */
function float32Bytes(name: string, t: RawTensor): Uint8Array {
  if (t.dtype === 'float32') return t.data;
  const n = t.shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  const dv = new DataView(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  for (let i = 0; i < n; i++) {
    if (t.dtype === 'float64') out[i] = dv.getFloat64(8 * i, true);
    else if (t.dtype === 'bfloat16') out[i] = new Float32Array(new Uint32Array([dv.getUint16(2 * i, true) << 16]).buffer)[0];
    else if (t.dtype === 'float16') out[i] = halfToFloat(dv.getUint16(2 * i, true));
    else throw new Error(`${name}: cannot export a ${t.dtype} weight as float`);
  }
  return new Uint8Array(out.buffer);
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? Number.NaN : s * Number.POSITIVE_INFINITY;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

const varintPrefix = (field: number, length: number): Uint8Array =>
  protobuf.Writer.create()
    .uint32((field << 3) | 2)
    .uint32(length)
    .finish();

function valueInfo(name: string, dims: (number | string)[]) {
  return {
    name,
    type: { tensor_type: { elem_type: DataType.FLOAT, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) } } },
  };
}

export interface OnnxExport {
  bytes: number;
  nodes: number;
  initializers: number;
}

/**
 * Writes the UNet of `weights` (reference state-dict keys) to `path` as ONNX, atomically.
 * Input `input` [batch, n_channels, height, width] float32 in 0..1; output `logits`
 * [batch, n_classes, height, width]. Height and width must be at least 2^depth (16 for the reference).
 */
export async function writeOnnx(path: string, weights: Map<string, RawTensor>, args: UNetArgs, meta: OnnxMetadata, producerVersion = ''): Promise<OnnxExport> {
  return writeGraph(path, unetGraph(args), weights, args, meta, { output: OUTPUT_NAME, what: 'logits', producerVersion });
}

/**
 * Writes an ensemble as one ONNX graph: the members' UNets on the same `input`, initializers
 * named `m<i>.<state-dict key>`, output `probabilities` [batch, n_classes, height, width] = the
 * mean of their softmax over the classes (1 output: of their sigmoid, P(class 1)).
 */
export async function writeOnnxEnsemble(path: string, members: readonly { weights: Map<string, RawTensor>; args: UNetArgs }[], meta: OnnxMetadata, producerVersion = ''): Promise<OnnxExport> {
  const weights = new Map(members.flatMap((m, i) => [...m.weights].map(([k, t]) => [`m${i}.${k}`, t] as const)));
  const what = `probabilities, the mean of ${members.length} models' ${members[0].args.nClasses === 1 ? 'sigmoid (P(class 1))' : 'softmax over the classes'}`;
  return writeGraph(path, ensembleGraph(members.map((m) => m.args)), weights, members[0].args, meta, { output: ENSEMBLE_OUTPUT_NAME, what, producerVersion });
}

async function writeGraph(path: string, g: Graph, weights: Map<string, RawTensor>, args: UNetArgs, meta: OnnxMetadata, o: { output: string; what: string; producerVersion: string }): Promise<OnnxExport> {
  const used = new Set(g.nodes.flatMap((n) => n.input));
  const missing = [...used].filter((n) => n !== INPUT_NAME && n !== '' && !weights.has(n) && !g.constants.some((c) => c.name === n) && !g.nodes.some((m) => m.output.includes(n)));
  if (missing.length > 0) throw new Error(`the checkpoint lacks ${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ', ...' : ''}; is it a UNet of the reference architecture?`);

  // Each weight: [tag+length][header: dims, data_type, name][raw_data tag+length][the bytes].
  const pieces: Uint8Array[] = [];
  let initBytes = 0;
  let initializers = 0;
  for (const [name, t] of weights) {
    if (!used.has(name)) continue; // num_batches_tracked
    const data = float32Bytes(name, t);
    const head = TensorProto.encode({ dims: t.shape, data_type: DataType.FLOAT, name }).finish();
    const rawPrefix = varintPrefix(9, data.length);
    const msgPrefix = varintPrefix(5, head.length + rawPrefix.length + data.length);
    pieces.push(msgPrefix, head, rawPrefix, data);
    initBytes += msgPrefix.length + head.length + rawPrefix.length + data.length;
    initializers++;
  }
  const graphHead = GraphProto.encode({
    node: g.nodes,
    name: 'unet',
    initializer: g.constants,
    doc_string: hasEncoder(args) ? `UNet over ${args.encoder} (segmentation_models_pytorch's Unet architecture) exported by unet-ts` : 'UNet (milesial/Pytorch-UNet architecture) exported by unet-ts',
    input: [valueInfo(INPUT_NAME, ['batch', args.nChannels, 'height', 'width'])],
    output: [valueInfo(o.output, ['batch', args.nClasses, 'height', 'width'])],
  }).finish();
  const modelHead = ModelProto.encode({
    ir_version: IR_VERSION,
    opset_import: [{ domain: '', version: OPSET }],
    producer_name: 'unet-ts',
    producer_version: o.producerVersion,
    doc_string: `input: float32 [batch, ${args.nChannels}, height, width] in 0..1 (height, width >= ${meta.min_size}); output: ${o.what === 'logits' ? 'logits' : `${o.output}`} [batch, ${args.nClasses}, height, width]${o.what === 'logits' ? '' : ` (${o.what})`}`,
    metadata_props: Object.entries(meta).map(([key, value]) => ({ key, value })),
  }).finish();
  const graphPrefix = varintPrefix(7, graphHead.length + initBytes);
  await writeFileAtomic(path, [modelHead, graphPrefix, graphHead, ...pieces]);
  return { bytes: modelHead.length + graphPrefix.length + graphHead.length + initBytes, nodes: g.nodes.length, initializers: initializers + g.constants.length };
}
