/**
 * The images `unet predict` writes:
 * - masks as PNG (or TIFF for a .tif/.tiff -o name) with the original mask values (class i -> maskValues[i]): [0, 1] as a 1-bit PNG
 *   (the reference writes a bool image, which viewers show black/white), other grey values as 8-bit
 *   or, above 255, 16-bit PNG; colour values as RGB PNG;
 * - probability maps as 16-bit grey PNG (0..65535 = 0..1);
 * - overlays: the input with the classes alpha-blended in a fixed distinct palette (class 0, the
 *   background, left uncoloured), above a legend strip listing class index (and name, from the
 *   checkpoint's --class-names), mask value and colour
 *   (text rendered by sharp from SVG).
 */
import { encode } from 'fast-png';
import sharp from 'sharp';
import { type MaskValues, type RGB, readImage } from '../data/index.js';
import { pngToTiff } from '../data/image/regions.js';
import { maskPng } from './mask-png.js';
import { classColour, classLabel } from '../tracking/palette.js';

export { isBinary01 } from './mask-png.js';
export { PALETTE, classColour } from '../tracking/palette.js';

// ------------------------------------------------------------------------------------------------
// Masks and probabilities

/** Encodes a class map [H, W] as a PNG holding the mask values. */
export async function encodeMaskPng(classes: Uint8Array, width: number, height: number, maskValues: MaskValues): Promise<Buffer> {
  return Buffer.from(maskPng(classes, width, height, maskValues));
}

/**
 * Writes a class map as a TIFF holding the mask values (8-bit, 16-bit above 255, RGB for colours;
 * [0, 1] as 8-bit 0/1 samples, which PIL reads as mode "L").
 */
export async function writeMaskTiff(classes: Uint8Array, width: number, height: number, maskValues: MaskValues, path: string): Promise<void> {
  await pngToTiff(maskPng(classes, width, height, maskValues, false), path);
}

/** A probability map (0..65535) as a 16-bit greyscale PNG. */
export function encodeProbPng(probs: Uint16Array, width: number, height: number): Buffer {
  return Buffer.from(encode({ width, height, data: probs, depth: 16, channels: 1 }));
}

const hex = (c: RGB) => `#${c.map((v) => v.toString(16).padStart(2, '0')).join('')}`;
const valueText = (v: number | RGB) => (Array.isArray(v) ? `(${v.join(', ')})` : String(v));

// ------------------------------------------------------------------------------------------------
// Overlay

export const OVERLAY_ALPHA = 0.5;
const FONT_SIZE = 12;
const ROW_H = 20;
const PAD = 6;
const CHAR_W = 7.2; // a generous average advance of a 12 px sans-serif font

export interface LegendLayout {
  /** Width of the whole overlay (the image's, unless the legend needs more). */
  width: number;
  /** Height of the legend strip below the image. */
  legendHeight: number;
  columns: number;
  rows: number;
  columnWidth: number;
}

/** One legend line per class: its name (with --class-names) or index, mask value and colour. */
export function legendEntries(maskValues: MaskValues, names?: readonly string[] | null): string[] {
  return maskValues.map((v, k) => {
    const c = classColour(k);
    return `${classLabel(k, valueText(v), names)}${c ? ` · ${hex(c)}` : ' · background (not coloured)'}`;
  });
}

/** Legend geometry for an image `imageWidth` wide: entries in columns, below the image. */
export function legendLayout(imageWidth: number, maskValues: MaskValues, names?: readonly string[] | null): LegendLayout {
  const entries = legendEntries(maskValues, names);
  const longest = Math.max(...entries.map((e) => e.length));
  const columnWidth = Math.ceil(PAD + 14 + 6 + longest * CHAR_W + PAD);
  const width = Math.max(imageWidth, columnWidth);
  const columns = Math.max(1, Math.min(entries.length, Math.floor(width / columnWidth)));
  const rows = Math.ceil(entries.length / columns);
  return { width, legendHeight: rows * ROW_H + 2 * PAD, columns, rows, columnWidth };
}

const xmlEscape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function legendSvg(layout: LegendLayout, maskValues: MaskValues, names?: readonly string[] | null): string {
  const entries = legendEntries(maskValues, names);
  const parts: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${layout.width}" height="${layout.legendHeight}">`, `<rect x="0" y="0" width="${layout.width}" height="${layout.legendHeight}" fill="#1e1e1e"/>`];
  entries.forEach((text, k) => {
    const col = Math.floor(k / layout.rows);
    const row = k % layout.rows;
    const x = PAD + col * layout.columnWidth;
    const y = PAD + row * ROW_H;
    const c = classColour(k);
    parts.push(
      c
        ? `<rect x="${x}" y="${y + 3}" width="14" height="14" fill="${hex(c)}" stroke="#ffffff" stroke-width="1"/>`
        : `<rect x="${x + 0.5}" y="${y + 3.5}" width="13" height="13" fill="none" stroke="#9a9a9a" stroke-width="1" stroke-dasharray="2,2"/>`,
      `<text x="${x + 20}" y="${y + 14}" font-family="DejaVu Sans, Arial, Helvetica, sans-serif" font-size="${FONT_SIZE}" fill="#f0f0f0">${xmlEscape(text)}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('');
}

/** The input at full size as 8-bit interleaved RGB. */
export async function readRgb8(path: string): Promise<{ data: Uint8Array; width: number; height: number }> {
  const img = await readImage(path); // [C, H, W] float32 in 0..1
  const { width, height, channels } = img;
  const plane = width * height;
  const out = new Uint8Array(plane * 3);
  const src = img.data;
  for (let c = 0; c < 3; c++) {
    const base = Math.min(c, channels - 1) * plane;
    for (let i = 0; i < plane; i++) {
      const v = Math.round(src[base + i] * 255);
      out[3 * i + c] = Math.max(0, Math.min(v, 255));
    }
  }
  return { data: out, width, height };
}

/** Alpha-blends the class colours into an RGB image in place (background untouched). */
export function blendClasses(rgb: Uint8Array, classes: Uint8Array, alpha = OVERLAY_ALPHA): Uint8Array {
  const lut: (RGB | null)[] = Array.from({ length: 256 }, (_, k) => classColour(k));
  for (let i = 0; i < classes.length; i++) {
    const c = lut[classes[i]];
    if (!c) continue;
    const j = 3 * i;
    rgb[j] = Math.round((1 - alpha) * rgb[j] + alpha * c[0]);
    rgb[j + 1] = Math.round((1 - alpha) * rgb[j + 1] + alpha * c[1]);
    rgb[j + 2] = Math.round((1 - alpha) * rgb[j + 2] + alpha * c[2]);
  }
  return rgb;
}

/**
 * The overlay PNG: the input (full size) with the predicted classes blended in, and a legend
 * strip below it. Size: legendLayout(W).width x (H + legendHeight).
 */
export async function renderOverlay(imagePath: string, classes: Uint8Array, width: number, height: number, maskValues: MaskValues, names?: readonly string[] | null): Promise<Buffer> {
  const img = await readRgb8(imagePath);
  if (img.width !== width || img.height !== height) {
    throw new Error(`${imagePath}: the image is ${img.width}x${img.height} but the prediction is ${width}x${height}`);
  }
  blendClasses(img.data, classes);
  const layout = legendLayout(width, maskValues, names);
  const legend = Buffer.from(legendSvg(layout, maskValues, names));
  return sharp({ create: { width: layout.width, height: height + layout.legendHeight, channels: 3, background: { r: 30, g: 30, b: 30 } } })
    .composite([
      { input: Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength), raw: { width, height, channels: 3 }, left: 0, top: 0 },
      { input: legend, left: 0, top: height },
    ])
    .removeAlpha()
    .png()
    .toBuffer();
}
