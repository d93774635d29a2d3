/** The U-Net model and its parts. */
export * from './parts.js';
export * from './unet.js';
