/** Prediction and evaluation: `unet predict`, `unet evaluate`. */
export * from './predictor.js';
export * from './overlay.js';
export { type InputEntry, OUTPUT_STEM, expandInputs } from './inputs.js';
export { type Job, type PredictedFile, planOutputs } from './outputs.js';
export { type PredictResult, type PredictRunOptions, predictCommand, runPredict } from './command.js';
export { type ClassMetrics, type EvaluateResult, type EvaluateRunOptions, evaluateCommand, formatEvaluation, runEvaluate, unknownMaskValues, writeEvaluationJson } from './evaluate-command.js';
