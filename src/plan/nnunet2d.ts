/**
 * nnU-Net v2's 2D planning rules (ExperimentPlanner.get_plans_for_configuration with
 * get_pool_and_conv_props and the PlainConvUNet feature-map estimate), written from reading them,
 * for 2D images of spacing 1. test/reference/nnunet_plan2d.py is the Python transcription the
 * tests compare with. The architecture is a parameter so the planner can ask the same rules about
 * this project's UNet (widths doubled without a cap, pooling both axes together).
 */

export interface Arch2d {
  baseFeatures: number; // nnU-Net: 32
  maxFeatures: number; // nnU-Net 2D: 512
  inChannels: number;
  classes: number;
}

export interface MemoryRef {
  /** GiB of memory the plan may fill (nnU-Net's default target: 8). */
  targetGB: number;
}

/** nnU-Net's constants: a feature-map count of 85e6 stands for 8 GB at batch 12 (2D). */
export const NNUNET_2D = { refVal: 85_000_000, refGB: 8, refBatch: 12, minBatch: 2, maxCovered: 0.05, minEdge: 4 } as const;

/** Python's round(): half to even. */
export function pyRound(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export interface Topology {
  numPool: [number, number];
  /** Per stage, the first is [1, 1]. */
  strides: [number, number][];
  patch: [number, number];
  divisibleBy: [number, number];
}

/** get_pool_and_conv_props for spacing (1, 1): halve the axes that stay >= 2 x minEdge (one axis alone: >= 3 x minEdge). */
export function poolProps(patch: readonly number[], minEdge: number = NNUNET_2D.minEdge): Topology {
  const size = [...patch];
  const numPool: [number, number] = [0, 0];
  const strides: [number, number][] = [[1, 1]];
  for (;;) {
    const valid = [0, 1].filter((i) => size[i] >= 2 * minEdge);
    if (valid.length < 1) break;
    if (valid.length === 1 && size[valid[0]] < 3 * minEdge) break;
    const stride: [number, number] = [1, 1];
    for (const v of valid) {
      stride[v] = 2;
      numPool[v]++;
      size[v] = Math.ceil(size[v] / 2);
    }
    strides.push(stride);
  }
  const divisibleBy: [number, number] = [2 ** numPool[0], 2 ** numPool[1]];
  const pad = (s: number, d: number) => (s % d === 0 ? s : s + d - (s % d));
  return { numPool, strides, patch: [Math.trunc(pad(patch[0], divisibleBy[0])), Math.trunc(pad(patch[1], divisibleBy[1]))], divisibleBy };
}

export const featuresPerStage = (stages: number, a: Pick<Arch2d, 'baseFeatures' | 'maxFeatures'>): number[] => Array.from({ length: stages }, (_, i) => Math.min(a.maxFeatures, a.baseFeatures * 2 ** i));

/**
 * PlainConvUNet.compute_conv_feature_map_size (no deep supervision): per encoder stage two conv
 * outputs; per decoder stage two conv outputs and the transposed conv's; the segmentation output.
 */
export function featureMapSize(patch: readonly number[], strides: readonly (readonly number[])[], features: readonly number[], classes: number): number {
  const sizes: number[][] = [];
  let size = [...patch];
  for (const s of strides) {
    size = size.map((v, i) => Math.floor(v / s[i]));
    sizes.push(size);
  }
  const px = (k: number) => sizes[k][0] * sizes[k][1];
  let out = 0;
  for (let k = 0; k < strides.length; k++) out += 2 * features[k] * px(k);
  for (let k = 0; k < strides.length - 1; k++) out += 3 * features[k] * px(k);
  return out + classes * px(0);
}

export interface Plan2d {
  patch: [number, number];
  batch: number;
  /** Poolings per axis; stages = max + 1. */
  numPool: [number, number];
  features: number[];
  estimate: number;
}

/**
 * The 2D configuration: the initial patch (area 2048², median aspect, clipped to the median
 * shape), shrunk along the axis largest relative to the median shape while the estimate exceeds
 * the memory reference; batch from the headroom, capped at 5% of the dataset's pixels, at least 2.
 */
export function plan2d(medianShape: readonly [number, number], nImages: number, arch: Arch2d, mem: MemoryRef = { targetGB: NNUNET_2D.refGB }): Plan2d {
  const C = NNUNET_2D;
  const initial = [0, 1].map((i) => Math.min(pyRound(2048), medianShape[i]));
  let topo = poolProps(initial);
  const estimateOf = (t: Topology) => featureMapSize(t.patch, t.strides, featuresPerStage(t.strides.length, arch), arch.classes);
  let estimate = estimateOf(topo);
  const reference = C.refVal * (mem.targetGB / C.refGB);
  while ((estimate / C.refBatch) * 2 > reference) {
    const ratios = [0, 1].map((i) => topo.patch[i] / medianShape[i]);
    const axis = ratios[1] >= ratios[0] ? 1 : 0; // numpy's argsort keeps ties in order: the last index wins
    const tmp = [...topo.patch];
    tmp[axis] -= topo.divisibleBy[axis];
    const d = poolProps(tmp).divisibleBy;
    const patch = [...topo.patch];
    patch[axis] -= d[axis];
    topo = poolProps(patch);
    estimate = estimateOf(topo);
  }
  let batch = pyRound((reference / estimate) * C.refBatch);
  const covered = pyRound((medianShape[0] * medianShape[1] * nImages * C.maxCovered) / (topo.patch[0] * topo.patch[1]));
  batch = Math.max(Math.min(batch, covered), C.minBatch);
  return { patch: topo.patch, batch, numPool: topo.numPool, features: featuresPerStage(topo.strides.length, arch), estimate };
}
