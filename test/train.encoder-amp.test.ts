// --amp with an encoder: every family's forward and backward under CPU bf16 autocast (what --amp
// runs on a CPU with native bf16, and under UNET_CPU_AMP=bf16 anywhere). The convolutions must run
// in bf16 (else autocast never engaged and the test proves nothing), the loss and every gradient
// stay finite, and the logits stay within bf16's precision of the fp32 ones.
import assert from 'node:assert/strict';
import test from 'node:test';
import * as E from '../src/engine/index.js';
import { createModel } from '../src/model/index.js';
import { tinyEncoderArgs } from './helpers/tiny-unet.js';

const relError = (a: E.Tensor, b: E.Tensor): number => E.tidy(() => a.float().sub(b.float()).norm().item() / b.float().norm().item());

for (const encoder of ['resnet18', 'efficientnet_b0', 'mobilenet_v3_large', 'convnext_tiny'])
  test(`--encoder ${encoder} under bf16 autocast: bf16 logits near fp32, finite loss and gradients`, () => {
    E.manualSeed(5);
    const model = createModel(tinyEncoderArgs(encoder));
    const x = E.rand([2, 1, 64, 64]);
    const y = E.randint(0, 2, [2, 64, 64]);
    try {
      model.eval();
      E.noGrad(() =>
        E.tidy(() => {
          const fp32 = model.forward(x);
          const bf16 = E.autocast('cpu', 'bfloat16', () => model.forward(x));
          assert.equal(bf16.dtype, 'bfloat16', 'the head convolution ran in bf16');
          const err = relError(bf16, fp32);
          assert.ok(err > 0 && err < 0.05, `bf16 logits differ from fp32 by ${err} (relative L2)`);
        }),
      );
      model.train();
      E.tidy(() => {
        const loss = E.autocast('cpu', 'bfloat16', () => E.crossEntropy(model.forward(x).float(), y));
        assert.ok(Number.isFinite(loss.item()), `loss ${loss.item()}`);
        loss.backward();
      });
      const params = model.parameters();
      const grads = E.grads(params);
      try {
        grads.forEach((g, i) => {
          assert.ok(g !== null, `parameter ${i} of ${params.length} got no gradient`);
          assert.equal(g.dtype, 'float32', 'gradients of fp32 parameters stay fp32');
          assert.ok(Number.isFinite(E.tidy(() => g.abs().sum().item())), `parameter ${i}: non-finite gradient`);
        });
      } finally {
        E.dispose(grads.filter((g): g is E.Tensor => g !== null));
      }
    } finally {
      E.dispose([x, y]);
      model.dispose();
    }
  });
