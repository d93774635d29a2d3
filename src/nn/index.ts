/** nn: modules and layers. */
export * from './module.js';
export * from './layers.js';
export * from './onnx-sink.js';
export * from './activations.js';
export * from './norm.js';
