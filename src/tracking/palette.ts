/** The class colours of overlays, TensorBoard masks and the report (Node and the browser page share this file: no Node imports). */
/** An RGB colour (the same shape as a colour mask value, src/data/mask-values.ts). */
type RGB = [number, number, number];

/** 20 distinct colours (Sasha Trubetskoy's list); class k >= 1 gets PALETTE[(k - 1) % 20]. */
export const PALETTE: readonly RGB[] = [
  [230, 25, 75],
  [60, 180, 75],
  [255, 225, 25],
  [67, 99, 216],
  [245, 130, 49],
  [145, 30, 180],
  [66, 212, 244],
  [240, 50, 230],
  [191, 239, 69],
  [250, 190, 212],
  [70, 153, 144],
  [220, 190, 255],
  [154, 99, 36],
  [255, 250, 200],
  [128, 0, 0],
  [170, 255, 195],
  [128, 128, 0],
  [255, 216, 177],
  [0, 0, 117],
  [169, 169, 169],
];

/** How legends and tables name class k with mask value `value`: its --class-names name first, when there is one. */
export function classLabel(k: number, value: string, names?: readonly string[] | null): string {
  const name = names?.[k];
  return name ? `${name} (class ${k}, value ${value})` : `class ${k}: value ${value}`;
}

/** The overlay colour of class k, or null for the background (class 0). */
export const classColour = (k: number): RGB | null => (k === 0 ? null : PALETTE[(k - 1) % PALETTE.length]);
