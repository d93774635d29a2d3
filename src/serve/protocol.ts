/**
 * The Open Inference Protocol v2 (KServe, Triton, ONNX Runtime's server), REST with JSON tensors:
 * the model metadata document, the infer request's checks and the infer response.
 */
import type { LoadedModel } from './thread.js';

/** A request the client got wrong: the HTTP status and the one-line `{"error": ...}` message. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** The smallest side the UNet takes (it halves the size 4 times). */
export const MIN_SIDE = 16;
export const OUTPUTS = ['logits', 'mask'] as const;
export type OutputName = (typeof OUTPUTS)[number];

export function modelMetadata(m: LoadedModel): object {
  return {
    name: m.name,
    versions: ['1'],
    platform: 'unet-ts_libtorch',
    inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, m.nChannels, -1, -1] }],
    outputs: [
      { name: 'logits', datatype: 'FP32', shape: [-1, m.nClasses, -1, -1] },
      { name: 'mask', datatype: 'UINT8', shape: [-1, -1, -1] },
    ],
    parameters: { mask_values: m.maskValues, scale: m.scale, bilinear: m.bilinear, device: m.device },
  };
}

export interface InferRequest {
  id?: string;
  shape: [number, number, number, number];
  data: Float32Array;
  outputs: OutputName[];
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const bad = (msg: string) => new HttpError(400, msg);

/** Row-major data, flat or nested, into `out`; false when a value is not a finite number or the count is off. */
function flatten(data: unknown, out: Float32Array): boolean {
  let i = 0;
  const walk = (v: unknown): boolean => {
    if (Array.isArray(v)) return v.every(walk);
    if (typeof v !== 'number' || !Number.isFinite(v) || i >= out.length) return false;
    out[i++] = v;
    return true;
  };
  return walk(data) && i === out.length;
}

/** Checks an infer request against the model; every problem is a 400 (413 over --max-pixels) naming the field. */
export function parseInferRequest(body: string, m: LoadedModel, maxPixels: number): InferRequest {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (e) {
    throw bad(`the body is not valid JSON: ${(e as Error).message}`);
  }
  if (!isObject(json) || !Array.isArray(json.inputs)) throw bad('the body must be a JSON object with an "inputs" array');
  if (json.inputs.length !== 1) throw bad(`model ${m.name} takes one input tensor, got ${json.inputs.length}`);
  const input = json.inputs[0] as unknown;
  if (!isObject(input)) throw bad('inputs[0] must be an object with name, shape, datatype and data');
  if (input.datatype !== 'FP32') throw bad(`inputs[0].datatype must be "FP32", got ${JSON.stringify(input.datatype)}`);
  const shape = input.shape;
  const min = m.minSide ?? MIN_SIDE;
  const want = `[N, ${m.nChannels}, H, W] with H, W >= ${min}`;
  if (!Array.isArray(shape) || shape.length !== 4 || !shape.every((d) => Number.isInteger(d) && d >= 1)) {
    throw bad(`inputs[0].shape must be ${want}, got ${JSON.stringify(shape)}`);
  }
  const [n, c, h, w] = shape as [number, number, number, number];
  if (c !== m.nChannels || h < min || w < min) throw bad(`inputs[0].shape must be ${want}, got ${JSON.stringify(shape)}`);
  if (n * h * w > maxPixels) throw new HttpError(413, `inputs[0] has ${n * h * w} pixels (N*H*W), over the server's --max-pixels ${maxPixels}`);
  const data = new Float32Array(n * c * h * w);
  if (!flatten(input.data, data)) throw bad(`inputs[0].data must hold ${data.length} finite numbers (the product of the shape ${JSON.stringify(shape)})`);
  let outputs: OutputName[] = [...OUTPUTS];
  if (json.outputs !== undefined) {
    if (!Array.isArray(json.outputs) || json.outputs.length === 0) throw bad('"outputs" must be a non-empty array of {"name": "logits" | "mask"}');
    outputs = json.outputs.map((o: unknown) => {
      const name = isObject(o) ? o.name : undefined;
      if (!OUTPUTS.includes(name as OutputName)) throw bad(`unknown output ${JSON.stringify(name)}: this model has "logits" and "mask"`);
      return name as OutputName;
    });
  }
  const id = typeof json.id === 'string' ? json.id : undefined;
  return { id, shape: [n, c, h, w], data, outputs };
}

/** The infer response: each asked output with its shape and flat row-major data. */
export function inferResponse(m: LoadedModel, req: InferRequest, logits: Float32Array | undefined, mask: Uint8Array | undefined): object {
  const [n, , h, w] = req.shape;
  const outputs = req.outputs.map((name) => (name === 'logits' ? { name, datatype: 'FP32', shape: [n, m.nClasses, h, w], data: Array.from(logits ?? []) } : { name, datatype: 'UINT8', shape: [n, h, w], data: Array.from(mask ?? []) }));
  return { model_name: m.name, model_version: '1', ...(req.id !== undefined ? { id: req.id } : {}), outputs };
}
