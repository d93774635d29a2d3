/** Engine facade: everything the rest of unet-ts needs from libtorch (one file per native/*.cpp concern). */
export * from './scope.js';
export * from './tensor.js';
export * from './ops.js';
export * from './autograd.js';
export * from './runtime.js';
export * from './distributed.js';
export * from './resample.js';
