/**
 * The scale inference resizes images by: one rule for predict, evaluate and export (and the
 * dashboard's "try it"), so they agree with each other and with the training run. The training
 * scale it starts from is the model card's (card.ts).
 */

/** predict.py's default scale: used for checkpoints that do not record the scale they were trained at (e.g. the reference's). */
export const REFERENCE_SCALE = 0.5;

export interface ScaleChoice {
  scale: number;
  /** Where it came from, for the user: "-s", "the checkpoint's training scale" or the reference's default. */
  source: string;
  /** Set when -s was given and differs from the training scale. */
  warning: string | null;
}

/**
 * The scale inference resizes images by (predict, evaluate, export): -s when given, else the
 * checkpoint's training scale, else the reference's 0.5. One rule, so the three commands agree.
 */
export function chooseScale(trained: number | null, given: number | undefined): ScaleChoice {
  if (given !== undefined) {
    const warning = trained !== null && given !== trained ? `-s ${given} differs from the scale the model was trained at (${trained}); results are usually best at the training scale (leave -s out to use it)` : null;
    return { scale: given, source: '-s', warning };
  }
  if (trained !== null) return { scale: trained, source: "the checkpoint's training scale", warning: null };
  return { scale: REFERENCE_SCALE, source: `the reference's default; the checkpoint does not record its training scale, pass -s S to change it`, warning: null };
}
