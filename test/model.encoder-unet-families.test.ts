// The encoder UNet over EfficientNet, MobileNetV3 and ConvNeXt against test/reference/smp_unet.py (a
// PyTorch transcription of smp's Unet over torchvision's models): its state dict, saved without
// model_args (an smp model's file), is imported by loadCheckpoint (encoder inferred from the keys)
// and gives the same logits at 64x64 and at an odd size (45x71: the final upsampling, and ConvNeXt's
// missing /2 skip) and the same gradients of the input and of parameters in the encoder, the
// decoder and the head. Eval mode (batchnorm statistics, stochastic depth off). Tolerances: logits
// 1e-4 absolute + 1e-4 relative, gradients 1e-4 of the tensor's largest magnitude.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as E from '../src/engine/index.js';
import { loadCheckpoint, weightsToTensors } from '../src/model/checkpoint.js';
import { type UNetArgs, createModel } from '../src/model/index.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../src/model/encoders/index.js';
import { PY_EXCHANGE, loadTensors } from './helpers/exchange.js';
import { NO_TORCH, assertClose, hasTorch, maxDiff, runPython } from './helpers/python.js';
import { PY_IMPORT_REFERENCE, REFERENCE_ROOT as REF } from './helpers/reference.js';

const PY = `${PY_IMPORT_REFERENCE}${PY_EXCHANGE}
torch.set_num_threads(2)
torch.manual_seed(0)
from reference.smp_unet import SmpUnet
def case(req):
  d = req['dir']
  norm = (req['mean'], req['std']) if req.get('mean') else None
  m = SmpUnet(req['encoder'], req['nChannels'], req['nClasses'], 5, req['decoder'], req['head'], norm)
  with torch.no_grad():  # norms and layer scales away from their initial 0, 1 and 1e-6
      for mod in m.modules():
          if isinstance(mod, (torch.nn.BatchNorm2d, torch.nn.LayerNorm)):
              mod.weight.uniform_(0.5, 1.5)
              mod.bias.uniform_(-0.2, 0.2)
          if isinstance(mod, torch.nn.BatchNorm2d):
              mod.running_mean.uniform_(-0.2, 0.2)
              mod.running_var.uniform_(0.5, 1.5)
      for k, p in m.named_parameters():
          if k.endswith('layer_scale'): p.uniform_(0.2, 1.0)
  torch.save(m.state_dict(), os.path.join(d, 'weights.pth'))
  m.eval()
  x = torch.rand(2, req['nChannels'], 64, 64, requires_grad=True)
  odd = torch.rand(1, req['nChannels'], 45, 71)
  y = m(x)
  wgt = torch.randn(y.shape)
  (y * wgt).sum().backward()
  with torch.no_grad():
      y_odd = m(odd)
  enc = [k for k, _ in m.named_parameters() if k.startswith('encoder.')]
  names = [enc[0], enc[len(enc) // 2], enc[-1], 'decoder.blocks.0.conv1.0.weight', 'decoder.blocks.4.conv2.1.weight', 'segmentation_head.0.weight', 'segmentation_head.0.bias']
  params = dict(m.named_parameters())
  dump(d, {'x': x, 'wgt': wgt, 'y': y, 'x.grad': x.grad, 'odd': odd, 'y_odd': y_odd, **{n: params[n].grad for n in names}}, 'out.json')
  return names
print(json.dumps({r['encoder']: case(r) for r in _REQ['cases']}))
`;

const configs = [
  { encoder: 'efficientnet_b0', nChannels: 3, nClasses: 2, decoder: [32, 16, 16, 8, 8], head: 1, normalize: true },
  { encoder: 'mobilenet_v3_large', nChannels: 1, nClasses: 3, decoder: [32, 16, 16, 8, 8], head: 3, normalize: false },
  { encoder: 'convnext_tiny', nChannels: 3, nClasses: 1, decoder: [32, 16, 16, 8, 8], head: 1, normalize: true },
];

/** max |a - b| / max |b|. */
const relErr = (a: E.Tensor, b: E.Tensor): number => E.tidy(() => a.sub(b).abs().amax().item() / (b.abs().amax().item() + 1e-12));

const NO = !hasTorch() && NO_TORCH;
const root = mkdtempSync(join(tmpdir(), 'enc-fam-'));
const norm = { mean: IMAGENET_MEAN, std: IMAGENET_STD };
/** Per encoder: the parameters whose gradients Python saved. One Python run for all (torch's import is slow). */
let names: Record<string, string[]> = {};
before(() => {
  if (NO) return;
  const cases = configs.map((c) => ({ ...c, dir: join(root, c.encoder), ...(c.normalize ? norm : {}) }));
  for (const c of cases) mkdirSync(c.dir);
  names = runPython<Record<string, string[]>>(PY, { root: REF, cases });
});
after(() => rmSync(root, { recursive: true, force: true }));

for (const cfg of configs) {
  test(`an smp-layout ${cfg.encoder} Unet state dict imports with the same logits and gradients`, { skip: NO }, async (t) => {
    const dir = join(root, cfg.encoder);
    const ckpt = await loadCheckpoint(join(dir, 'weights.pth'));
    const a = ckpt.modelArgs as UNetArgs;
    assert.deepEqual([a.encoder, a.encoderDepth, a.decoderChannels, a.headKernel, a.nChannels, a.nClasses], [cfg.encoder, 5, cfg.decoder, cfg.head, cfg.nChannels, cfg.nClasses]);
    const m = createModel(cfg.normalize ? { ...a, normalize: norm } : a);
    const w = weightsToTensors(ckpt.model);
    m.loadStateDict(w);
    for (const v of w.values()) v.dispose();
    m.eval();
    const ref = loadTensors(dir, 'out.json');
    const r = (k: string) => ref.get(k) as E.Tensor;
    const x = r('x').clone().requiresGrad_(true);
    const report: string[] = [];
    E.tidy(() => {
      const y = m.forward(x);
      assertClose(y.toArray(), r('y').toArray(), 1e-4, 1e-4, 'logits 64x64');
      report.push(`logits ${maxDiff(y.toArray(), r('y').toArray()).toExponential(1)}`);
      y.mul(r('wgt')).sum().backward();
      const odd = E.noGrad(() => m.forward(r('odd')));
      assert.deepEqual(odd.shape, r('y_odd').shape);
      assertClose(odd.toArray(), r('y_odd').toArray(), 1e-4, 1e-4, 'logits 45x71');
      report.push(`45x71 ${maxDiff(odd.toArray(), r('y_odd').toArray()).toExponential(1)}`);
    });
    const params = new Map(m.namedParameters());
    for (const name of ['x.grad', ...names[cfg.encoder]]) {
      const g = name === 'x.grad' ? x.grad : params.get(name)?.grad;
      assert.ok(g, `no gradient for ${name}`);
      const err = relErr(g as E.Tensor, r(name));
      report.push(`${name} ${err.toExponential(1)}`);
      assert.ok(err < 1e-4, `grad ${name}: relative max error ${err}`);
    }
    t.diagnostic(report.join(', '));
    x.dispose();
    for (const v of ref.values()) v.dispose();
    m.dispose();
  });
}
