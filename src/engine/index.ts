/** Engine facade: everything the rest of unet-ts needs from libtorch. */
export * from './tensor.js';
export * from './ops.js';
export * from './distributed.js';
