// `unet export --format onnx` of encoder UNets (train --encoder): the graph the model writes of
// itself (EncoderUNet.onnx: normalisation, the encoder's features, nearest upsampling to the
// skip's size, the decoder, the head) gives libtorch's logits in onnxruntime-node to 1e-4, at
// two sizes through the same session. One case per encoder family.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import * as E from '../src/engine/index.js';
import { exportCommand } from '../src/export/command.js';
import { loadOnnxPredictor } from '../src/export/onnx-runtime.js';
import { saveCheckpoint } from '../src/model/checkpoint.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../src/model/encoders/index.js';
import { EncoderUNet } from '../src/model/index.js';
import { maxDiff } from './helpers/python.js';

let NO_ORT: string | false = false;
try {
  await import('onnxruntime-node');
} catch {
  NO_ORT = 'onnxruntime-node is not installed (npm ci installs it as a devDependency)';
}

const dir = mkdtempSync(join(tmpdir(), 'enc-onnx-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Each family's smallest encoder. */
const ENCODER_CASES = ['resnet18', 'efficientnet_b0', 'mobilenet_v3_large', 'convnext_tiny'];

for (const encoder of ENCODER_CASES) {
  test(`onnxruntime-node = libtorch for an exported ${encoder} UNet (normalised input, 64x64 and 45x71)`, { skip: NO_ORT }, async () => {
    E.manualSeed(5);
    const m = new EncoderUNet({ nChannels: 3, nClasses: 3, bilinear: false, encoder, decoderChannels: [32, 32, 16, 16, 8], normalize: { mean: IMAGENET_MEAN, std: IMAGENET_STD } });
    E.noGrad(() => {
      for (const [k, t] of m.stateDict()) {
        if (k.endsWith('running_mean')) t.normal_(0, 0.1);
        else if (k.endsWith('running_var')) t.uniform_(0.5, 1.5);
      }
    });
    m.eval();
    const ckpt = join(dir, `${encoder}.pth`);
    await saveCheckpoint(ckpt, { model: m.stateDict(), epoch: 1, globalStep: 1, loss: 0, valScore: 0, maskValues: [0, 1, 2], modelArgs: m.args, config: { scale: 1 } });
    const file = join(dir, `${encoder}.onnx`);
    const lines: string[] = [];
    assert.equal(await exportCommand({ model: ckpt, format: 'onnx', output: file, log: (l) => lines.push(l) }), 0);
    assert.match(lines.join('\n'), new RegExp(`encoder=${encoder}`));
    const p = await loadOnnxPredictor(file);
    try {
      for (const [n, h, w] of [
        [2, 64, 64],
        [1, 45, 71],
      ]) {
        const x = E.rand([n, 3, h, w]);
        const xd = x.data() as Float32Array;
        const ours = E.noGrad(() => m.forward(x)).disposeAfter((t) => t.data() as Float32Array);
        x.dispose();
        const y = await p.run(xd, [n, 3, h, w]);
        assert.deepEqual(y.dims, [n, 3, h, w]);
        const d = maxDiff(ours, y.data);
        assert.ok(d <= 1e-4, `${n}x${h}x${w}: max |diff| ${d}`);
      }
    } finally {
      await p.release();
      m.dispose();
    }
  });
}
