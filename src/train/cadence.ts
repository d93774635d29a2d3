/**
 * When validation rounds run during training. Each round steps the plateau scheduler with its
 * Dice; the validation at every epoch's end (best model, early stopping, the checkpoint's
 * val_score) runs in any case.
 *
 * 'auto' is the reference trainer's cadence: every `n_train // (5 * batch_size)` batches (its
 * division_step), counted over all epochs (its global_step, one per batch, also under gradient
 * accumulation as in the guide's fork), so about five rounds per epoch at positions that drift
 * from epoch to epoch. Where that is 0 (fewer than 5 batches per epoch) the reference never
 * validates and never steps its scheduler; we fall back to the epoch's end.
 */
export type Cadence = { unit: 'batches' | 'steps'; every: number } | { unit: 'epoch' };

export function validationCadence(valEvery: 'auto' | number, nTrain: number, batchSize: number): Cadence {
  if (valEvery === 'auto') {
    const division = Math.floor(nTrain / (5 * batchSize));
    return division > 0 ? { unit: 'batches', every: division } : { unit: 'epoch' };
  }
  return valEvery > 0 ? { unit: 'steps', every: valEvery } : { unit: 'epoch' };
}

/** Whether a round is due after a batch: `batch` counts batches over all epochs, `step` optimizer steps. */
export function roundDue(c: Cadence, batch: number, step: number, stepped: boolean): boolean {
  if (c.unit === 'batches') return batch % c.every === 0;
  if (c.unit === 'steps') return stepped && step > 0 && step % c.every === 0;
  return false;
}

export function describeCadence(c: Cadence): string {
  if (c.unit === 'batches') return `every ${c.every} batches (the reference's cadence) and at each epoch's end`;
  if (c.unit === 'steps') return `every ${c.every} optimizer steps and at each epoch's end`;
  return "at each epoch's end";
}

/**
 * --val-last N: whether epoch `epoch` of a run planned to end at `lastEpoch` validates. The first
 * epoch always does: a first score early, and the cost of a validation for --time-budget's plan.
 */
export const validatesAt = (epoch: number, lastEpoch: number, valLast: number): boolean => valLast === 0 || epoch === 1 || epoch > lastEpoch - valLast;

/** Validated epoch ends among epochs `done + 1` .. `lastEpoch` (validatesAt, counted). */
export function validatedEnds(done: number, lastEpoch: number, valLast: number): number {
  const ends = Math.max(0, lastEpoch - done);
  if (valLast === 0) return ends;
  return Math.min(ends, valLast + (done === 0 && lastEpoch > valLast ? 1 : 0));
}

/** The log's line for --val-last (a resumed run's first epoch is behind it). */
export function describeValLast(valLast: number, startEpoch: number): string {
  const last = valLast === 1 ? "the last epoch's end" : `the last ${valLast} epochs' ends`;
  return `at ${startEpoch === 1 ? "the first epoch's end and " : ''}${last} (--val-last)`;
}

/** --val-last leaves epochs unscored: what needs a score every epoch or round is refused, all at once. */
export function valLastProblem(cfg: { valLast: number; valEvery: 'auto' | number; patience: number; scheduler: string }): string | null {
  if (cfg.valLast === 0) return null;
  const needs = [
    cfg.valEvery !== 0 && `--val-every 0 (validation rounds inside epochs; now ${cfg.valEvery})`,
    cfg.patience > 0 && `--patience 0 (early stopping scores every epoch; now ${cfg.patience})`,
    cfg.scheduler === 'plateau' && '--scheduler poly, cosine or none (plateau steps on validation scores)',
  ].filter(Boolean);
  return needs.length ? `--val-last ${cfg.valLast} validates only at the first and the last ${cfg.valLast} epoch(s); it needs ${needs.join(', ')}. --auto and --plan set all of them.` : null;
}
