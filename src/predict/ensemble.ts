/**
 * Ensembles: `unet predict|evaluate -m a.pth -m b.pth ...` average the models' softmax (sigmoid
 * for 1-output models; tta.ts). The models must agree on what they predict and take (classes,
 * mask values, input channels); their widths and upsampling may differ. They all run at one
 * scale: -s, else the first model's training scale (a note says so when the models differ).
 */
import { type LoadModelOptions, type Predictor, PredictError, loadPredictor } from './predictor.js';

/** -m's value(s): one path (a config file or programmatic use) or several. */
export const modelPaths = (m: string | readonly string[]): string[] => (typeof m === 'string' ? [m] : [...m]);

/** What the members of an ensemble must share; a difference names both files. */
export function checkMembers(members: readonly Pick<Predictor, 'path' | 'args' | 'maskValues'>[]): void {
  const [a, ...rest] = members;
  for (const b of rest) {
    const differ = (what: string, va: unknown, vb: unknown) =>
      new PredictError(`the ensemble's models differ in ${what}: ${a.path} has ${JSON.stringify(va)}, ${b.path} has ${JSON.stringify(vb)}; an ensemble averages models trained for the same classes on the same kind of images`);
    if (a.args.nClasses !== b.args.nClasses) throw differ('classes (-c)', a.args.nClasses, b.args.nClasses);
    if (a.args.nChannels !== b.args.nChannels) throw differ('input channels', a.args.nChannels, b.args.nChannels);
    if (JSON.stringify(a.maskValues) !== JSON.stringify(b.maskValues)) throw differ('mask values', a.maskValues, b.maskValues);
  }
}

/** Loads one model, or the models of an ensemble as one Predictor whose forward pass averages them. */
export async function loadEnsemble(paths: readonly string[], opts: LoadModelOptions = {}): Promise<Predictor> {
  if (paths.length === 0) throw new PredictError('no model: pass a checkpoint with -m/--model');
  const loaded: Predictor[] = [];
  try {
    for (const path of paths) loaded.push(await loadPredictor(path, opts));
    checkMembers(loaded);
  } catch (e) {
    for (const p of loaded) p.dispose();
    throw e;
  }
  const [first] = loaded;
  if (loaded.length === 1) return first;
  const notes = loaded.flatMap((p) => p.notes.map((n) => `${p.path}: ${n}`));
  const scales = loaded.map((p) => p.trainingScale);
  if (scales.some((s) => s !== scales[0])) {
    notes.push(`the models were trained at different scales (${loaded.map((p, i) => `${p.path}: ${scales[i] ?? 'unknown'}`).join(', ')}); all run at -s, else the first model's`);
  }
  return {
    ...first,
    path: paths.join(' + '),
    notes,
    models: loaded.map((p) => p.model),
    dispose: () => {
      for (const p of loaded) p.dispose();
    },
  };
}
