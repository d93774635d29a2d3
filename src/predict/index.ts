/** Prediction and evaluation: `unet predict`, `unet evaluate`. */
export * from './predictor.js';
export * from './overlay.js';
export { type InputEntry, type Job, type PredictResult, type PredictRunOptions, type PredictedFile, OUTPUT_STEM, expandInputs, globLastSegment, planOutputs, predictCommand, runPredict } from './cli.js';
export { type ClassMetrics, type EvaluateResult, type EvaluateRunOptions, evaluateCommand, formatEvaluation, runEvaluate, unknownMaskValues, writeEvaluationJson } from './evaluate-cli.js';
