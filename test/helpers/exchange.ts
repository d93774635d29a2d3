/** Raw-file tensor exchange with Python tests (independent of our .pth code, so it can check it). */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as E from '../../src/engine/index.js';
import type { Tensor } from '../../src/engine/index.js';

export interface Entry {
  name: string;
  file: string;
  shape: number[];
  dtype: string;
}

/** Writes tensors as raw little-endian files plus manifest.json; Python reads them with numpy. */
export function dumpTensors(dir: string, tensors: Iterable<[string, Tensor]>, manifestName = 'manifest.json'): void {
  const manifest: Entry[] = [];
  let i = 0;
  for (const [name, t] of tensors) {
    const file = `${manifestName}.${i++}.bin`;
    writeFileSync(join(dir, file), t.bytes());
    manifest.push({ name, file, shape: t.shape, dtype: t.dtype });
  }
  writeFileSync(join(dir, manifestName), JSON.stringify(manifest));
}

/** Reads what PY_EXCHANGE's `dump` wrote. */
export function loadTensors(dir: string, manifestName: string): Map<string, Tensor> {
  const manifest = JSON.parse(readFileSync(join(dir, manifestName), 'utf8')) as Entry[];
  const out = new Map<string, Tensor>();
  for (const e of manifest) {
    const bytes = readFileSync(join(dir, e.file));
    out.set(
      e.name,
      E.tensor(new Uint8Array(bytes), [bytes.length], { dtype: 'uint8' }).disposeAfter((u) => rawView(u, e)),
    );
  }
  return out;
}

function rawView(u: Tensor, e: Entry): Tensor {
  const bytes = u.bytes();
  return E.tensor(bytes, e.shape, { dtype: e.dtype as never });
}

/** Python helpers matching dumpTensors/loadTensors. */
export const PY_EXCHANGE = `
import json, os, numpy as np, torch
NP = {'float32': np.float32, 'float64': np.float64, 'int64': np.int64, 'int32': np.int32, 'uint8': np.uint8, 'bool': np.bool_}
def load(d, name='manifest.json'):
    out = {}
    for e in json.load(open(os.path.join(d, name))):
        a = np.fromfile(os.path.join(d, e['file']), dtype=NP[e['dtype']]).reshape(e['shape'])
        out[e['name']] = torch.from_numpy(a.copy())
    return out
def dump(d, tensors, name):
    m = []
    for i, (k, t) in enumerate(tensors.items()):
        f = f'{name}.{i}.bin'
        t = t.detach().contiguous().cpu()
        t.numpy().tofile(os.path.join(d, f))
        m.append({'name': k, 'file': f, 'shape': list(t.shape), 'dtype': str(t.dtype).replace('torch.', '')})
    json.dump(m, open(os.path.join(d, name), 'w'))
`;

/**
 * Every tensor of `ours` against the reference's `final`, relative to how far the reference moved
 * it from `init` (weights and running statistics alike): a skipped update is an error as large as
 * the change itself. Asserts change > 0 and max |ours - final| <= rel * change + abs for each;
 * num_batches_tracked must be equal. Returns the worst error / change.
 */
export function assertMovedAsReference(ours: Map<string, Tensor>, init: Map<string, Tensor>, final: Map<string, Tensor>, tol: { rel: number; abs?: number; what: string }): number {
  let worst = 0;
  for (const [name, ref] of final) {
    E.tidy(() => {
      const t = ours.get(name) as Tensor;
      if (name.endsWith('num_batches_tracked')) return assert.equal(t.item(), ref.item(), name);
      const change = ref
        .sub(init.get(name) as Tensor)
        .abs()
        .amax()
        .item();
      const err = t.sub(ref).abs().amax().item();
      assert.ok(change > 0, `${name}: the reference did not change it`);
      assert.ok(err <= tol.rel * change + (tol.abs ?? 0), `${name}: max error ${err} against ${tol.what}, ${((100 * err) / change).toFixed(2)}% of its change ${change}`);
      worst = Math.max(worst, err / change);
    });
  }
  return worst;
}
