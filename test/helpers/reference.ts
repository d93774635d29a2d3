/** The project's own PyTorch reference (test/reference/, a Python package) for golden values. */
import { resolve } from 'node:path';

/** test/: put on Python's sys.path, then `from reference.model import UNet`. */
export const REFERENCE_ROOT = resolve(import.meta.dirname, '..');
/** The bench script (`unet bench --reference`); it also exposes `UNet` for `bench --predict`. */
export const REFERENCE_BENCH = resolve(REFERENCE_ROOT, 'reference', 'bench.py');
/** Python lines that make `reference` importable; scripts get `root` in their JSON input. */
export const PY_IMPORT_REFERENCE = `
import sys as _sys, json as _json
_REQ = _json.load(_sys.stdin)
_sys.path.insert(0, _REQ['root'])
`;
