/**
 * Running an exported model with onnxruntime-node (`unet bench --predict --onnx`, tests).
 * onnxruntime-node is not a dependency (300 MB with every platform's binaries): it is imported
 * when asked for, and its absence is one clear line. Install it without its CUDA download:
 * `ONNXRUNTIME_NODE_INSTALL=skip npm i -D onnxruntime-node`.
 */
import { UserError } from '../config/errors.js';
import { MIN_SIDE } from '../model/limits.js';
import { INPUT_NAME } from './onnx.js';

type Ort = typeof import('onnxruntime-node');

export class OnnxRuntimeError extends UserError {}

export async function importOnnxRuntime(): Promise<Ort> {
  try {
    return await import('onnxruntime-node');
  } catch {
    throw new OnnxRuntimeError('onnxruntime-node is not installed: ONNXRUNTIME_NODE_INSTALL=skip npm i -D onnxruntime-node');
  }
}

export interface OnnxPredictor {
  /** logits (an ensemble: its mean probabilities) [N, K, H, W] for x [N, C, H, W] (H, W >= 16: onnxruntime would return a wrong shape below it) */
  run(x: Float32Array, shape: [number, number, number, number]): Promise<{ data: Float32Array; dims: number[] }>;
  release(): Promise<void>;
}

export async function loadOnnxPredictor(path: string, threads?: number): Promise<OnnxPredictor> {
  const ort = await importOnnxRuntime();
  const session = await ort.InferenceSession.create(path, threads ? { intraOpNumThreads: threads, interOpNumThreads: 1 } : {});
  return {
    async run(x, shape) {
      const [, , h, w] = shape;
      if (h < MIN_SIDE || w < MIN_SIDE) throw new OnnxRuntimeError(`input is ${w}x${h}, but the UNet needs at least ${MIN_SIDE}x${MIN_SIDE} pixels (it halves the size 4 times); use a larger image or scale`);
      const input = new ort.Tensor('float32', x, shape);
      const out = await session.run({ [INPUT_NAME]: input });
      const y = out[session.outputNames[0]]; // logits, or an ensemble's probabilities
      const r = { data: y.data as Float32Array, dims: [...y.dims] };
      input.dispose();
      return r;
    },
    release: () => session.release(),
  };
}
