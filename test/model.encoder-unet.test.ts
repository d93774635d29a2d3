// The encoder UNet (train --encoder) against test/reference/smp_unet.py, a PyTorch transcription of
// segmentation_models_pytorch's Unet over torchvision's ResNets: its state dict, saved by torch.save
// without model_args (an smp model's file), is imported by loadCheckpoint (encoder, depth, decoder
// widths and head kernel inferred from the weights) and gives the same logits in eval and train
// mode, and the same gradients.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import * as E from '../src/engine/index.js';
import { loadCheckpoint, saveCheckpoint, saveReferenceStateDict, weightsToTensors } from '../src/model/checkpoint.js';
import { EncoderUNet, type UNetArgs, createModel } from '../src/model/index.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../src/model/encoders/index.js';
import { PY_EXCHANGE, loadTensors } from './helpers/exchange.js';
import { NO_TORCH, assertClose, hasTorch, runPython } from './helpers/python.js';
import { PY_IMPORT_REFERENCE, REFERENCE_ROOT as REF } from './helpers/reference.js';

const canCompare = hasTorch();

test("resnet18 encoder UNet: smp's parameter count and state-dict keys; depth 3 and 4 and odd sizes give full-size logits", () => {
  E.manualSeed(0);
  const m = new EncoderUNet({ nChannels: 3, nClasses: 2, bilinear: false, encoder: 'resnet18' });
  assert.equal(m.numParameters(), 14_328_098); // smp.Unet('resnet18', classes=2)
  const keys = [...m.stateDict().keys()];
  assert.equal(keys[0], 'encoder.conv1.weight');
  assert.ok(keys.includes('encoder.layer4.1.bn2.running_var'));
  assert.ok(keys.includes('decoder.blocks.0.conv1.0.weight') && keys.includes('decoder.blocks.4.conv2.1.num_batches_tracked'));
  assert.deepEqual(keys.slice(-2), ['segmentation_head.0.weight', 'segmentation_head.0.bias']);
  assert.deepEqual(m.stateDict().get('decoder.blocks.0.conv1.0.weight')?.shape, [256, 512 + 256, 3, 3]);
  assert.deepEqual(m.stateDict().get('decoder.blocks.4.conv1.0.weight')?.shape, [16, 32, 3, 3]); // no skip at full size
  m.dispose();
  for (const [encoderDepth, h, w] of [
    [3, 37, 50],
    [4, 45, 33],
  ]) {
    const d = new EncoderUNet({ nChannels: 1, nClasses: 3, bilinear: false, encoder: 'resnet18', encoderDepth, decoderChannels: [24, 16, 8, 8].slice(0, encoderDepth) });
    d.eval();
    const y = E.noGrad(() => E.tidy(() => d.forward(E.rand([2, 1, h, w]))));
    assert.deepEqual(y.shape, [2, 3, h, w]);
    assert.ok(![...d.stateDict().keys()].some((k) => k.startsWith(`encoder.layer${encoderDepth}.`)), 'no stage past the depth');
    y.dispose();
    d.dispose();
  }
});

test('encoder args survive a checkpoint and damaged ones are refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'enc-args-'));
  try {
    const args: UNetArgs = {
      nChannels: 3,
      nClasses: 2,
      bilinear: false,
      encoder: 'resnet18',
      encoderDepth: 3,
      decoderChannels: [16, 8, 8],
      headKernel: 3,
      normalize: { mean: IMAGENET_MEAN, std: IMAGENET_STD },
    };
    const m = createModel(args);
    const save = (file: string, a: UNetArgs) => saveCheckpoint(join(dir, file), { model: m.stateDict(), epoch: 1, globalStep: 1, loss: 0, valScore: 0, maskValues: [0, 1], modelArgs: a, config: {} });
    await save('ok.pth', args);
    const back = await loadCheckpoint(join(dir, 'ok.pth'));
    assert.deepEqual({ ...back.modelArgs }, { ...args, bilinear: false });
    await save('wrong.pth', { ...args, decoderChannels: [16, 8, 4] });
    await assert.rejects(loadCheckpoint(join(dir, 'wrong.pth')), /damaged: model_args .* do not match its weights/);
    await save('huge.pth', { ...args, decoderChannels: [1e9, 8, 8] });
    await assert.rejects(loadCheckpoint(join(dir, 'huge.pth')), /damaged: model_args ask for a model that cannot be built/);
    await save('unknown.pth', { ...args, encoder: 'resnet9000' });
    await assert.rejects(loadCheckpoint(join(dir, 'unknown.pth')), /encoder resnet9000 is not one of resnet18/);
    // smp-layout files without model_args: sizes are checked before anything is built
    const flat = (file: string, edit: (sd: Map<string, E.Tensor>) => void) => {
      const sd = new Map(m.stateDict());
      edit(sd);
      return saveReferenceStateDict(join(dir, file), sd, [0, 1]);
    };
    await flat('smp-huge.pth', (sd) => sd.set('decoder.blocks.0.conv1.0.weight', E.zeros([5000, 1, 3, 3])));
    await assert.rejects(loadCheckpoint(join(dir, 'smp-huge.pth')), /smp-huge\.pth does not hold the weights of an smp-style encoder UNet \(decoder\.blocks\.0\.conv1\.0\.weight has shape \[5000,1,3,3\]\)/);
    await flat('smp-odd.pth', (sd) => sd.delete('encoder.layer1.1.conv2.weight'));
    await assert.rejects(loadCheckpoint(join(dir, 'smp-odd.pth')), /its encoder\.\* keys and shapes are none of resnet18, resnet34, resnet50/);
    m.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const PY = `${PY_IMPORT_REFERENCE}${PY_EXCHANGE}
torch.set_num_threads(2)
torch.manual_seed(0)
from reference.smp_unet import SmpUnet
req = _REQ
d = req['dir']
norm = (req['mean'], req['std']) if req.get('mean') else None
m = SmpUnet(req['encoder'], req['nChannels'], req['nClasses'], req['depth'], req['decoder'], req['head'], norm)
with torch.no_grad():
    for k, v in m.state_dict().items():  # BN statistics and affine parameters that are not 0 and 1
        if k.endswith('running_mean') or k.endswith('.bias') and 'bn' in k: v.uniform_(-0.2, 0.2)
        elif k.endswith('running_var') or k.endswith('.weight') and ('bn' in k or 'downsample.1' in k): v.uniform_(0.5, 1.5)
torch.save(m.state_dict(), os.path.join(d, 'weights.pth'))
x = torch.rand(2, req['nChannels'], req['h'], req['w'])
m.eval()
with torch.no_grad():
    ev = m(x)
m.train()
tr = m(x)
wgt = torch.randn(tr.shape)
(tr * wgt).sum().backward()
dump(d, {'x': x, 'wgt': wgt, 'eval': ev, 'train': tr}, 'out.json')
dump(d, {k: p.grad for k, p in m.named_parameters()}, 'grads.json')
print(json.dumps({}))
`;

const configs = [
  { encoder: 'resnet18', nChannels: 3, nClasses: 2, depth: 5, decoder: [256, 128, 64, 32, 16], head: 1, h: 64, w: 64, normalize: true },
  { encoder: 'resnet50', nChannels: 1, nClasses: 3, depth: 3, decoder: [64, 32, 16], head: 3, h: 46, w: 62, normalize: false },
  { encoder: 'resnet34', nChannels: 3, nClasses: 1, depth: 4, decoder: [32, 16, 8, 8], head: 1, h: 36, w: 40, normalize: false },
];

for (const cfg of configs) {
  test(`an smp-layout ${cfg.encoder} Unet state dict imports with the same logits and gradients: ${JSON.stringify(cfg)}`, { skip: !canCompare && NO_TORCH }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'enc-unet-'));
    try {
      const norm = cfg.normalize ? { mean: IMAGENET_MEAN, std: IMAGENET_STD } : null;
      runPython(PY, { ...cfg, dir, root: REF, mean: norm?.mean, std: norm?.std });
      const ckpt = await loadCheckpoint(join(dir, 'weights.pth'));
      const a = ckpt.modelArgs as UNetArgs;
      assert.deepEqual([a.encoder, a.encoderDepth, a.decoderChannels, a.headKernel, a.nChannels, a.nClasses], [cfg.encoder, cfg.depth, cfg.decoder, cfg.head, cfg.nChannels, cfg.nClasses]);
      const m = createModel(norm ? { ...a, normalize: norm } : a);
      const w = weightsToTensors(ckpt.model);
      m.loadStateDict(w);
      for (const t of w.values()) t.dispose();
      const out = loadTensors(dir, 'out.json');
      const ref = (k: string) => out.get(k) as E.Tensor;
      E.tidy(() => {
        m.eval();
        assertClose(E.noGrad(() => m.forward(ref('x'))).toArray(), ref('eval').toArray(), 1e-4, 1e-4, 'eval logits');
        m.train();
        const tr = m.forward(ref('x'));
        assertClose(tr.toArray(), ref('train').toArray(), 1e-4, 1e-4, 'train logits');
        tr.mul(ref('wgt')).sum().backward();
      });
      const grads = loadTensors(dir, 'grads.json');
      for (const [name, p] of m.namedParameters()) {
        E.tidy(() => {
          const r = grads.get(name) as E.Tensor;
          const err = (p.grad as E.Tensor).sub(r).abs().amax().item() / (r.abs().amax().item() + 1e-12);
          assert.ok(err < 1e-3, `grad ${name}: relative max error ${err}`);
        });
      }
      for (const t of [...out.values(), ...grads.values()]) t.dispose();
      m.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
