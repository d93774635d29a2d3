// --encoder-weights: torchvision 0.14's random resnet18 / resnet50 saved by Python (torch.save .pth,
// and a safetensors file written by hand) load into our encoders and give torchvision's features and
// gradients; smp's first-convolution rule for 1 and 4 channels; the hub cache look-up; clear errors.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import * as E from '../src/engine/index.js';
import { encoderKeys, loadEncoderWeights, normalizationFor, resolveEncoderWeights } from '../src/model/encoder-weights.js';
import { rawTensor } from '../src/io/pth.js';
import { saveSafetensors } from '../src/io/safetensors.js';
import { ENCODERS, type Encoder } from '../src/model/encoders/index.js';
import { PY_EXCHANGE, dumpTensors, loadTensors } from './helpers/exchange.js';
import { NO_TORCH, hasTorch, runPython } from './helpers/python.js';
import { tempDir } from './helpers/workdir.js';

const skip = !hasTorch() && NO_TORCH;
const root = tempDir('enc-weights');

// torchvision's models with random weights: the state dict as .pth (resnet18) and as a hand-written
// safetensors file (resnet50; the safetensors module is not in Debian), features of x at every
// stage (smp's ResNetEncoder.forward), and the gradients of their sum; train mode (batch statistics).
const PY = `${PY_EXCHANGE}
import struct, sys, torchvision
_REQ = json.load(sys.stdin)
torch.set_num_threads(2)
def save_safetensors(path, sd):
    header, blobs, off = {}, [], 0
    for k, t in sd.items():
        b = t.contiguous().numpy().tobytes()
        header[k] = {'dtype': {torch.float32: 'F32', torch.int64: 'I64'}[t.dtype], 'shape': list(t.shape), 'data_offsets': [off, off + len(b)]}
        blobs.append(b); off += len(b)
    h = json.dumps(header).encode()
    h += b' ' * (-len(h) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h))); f.write(h)
        for b in blobs: f.write(b)
d = _REQ['dir']
x0 = load(d, 'x.json')['x']
for arch, fmt in [('resnet18', 'pth'), ('resnet50', 'safetensors')]:
    torch.manual_seed(3)
    m = getattr(torchvision.models, arch)()
    sd = m.state_dict()
    if fmt == 'pth': torch.save(sd, os.path.join(d, arch + '.pth'))
    else: save_safetensors(os.path.join(d, arch + '.safetensors'), sd)
    x = x0.clone().requires_grad_(True)
    f0 = m.relu(m.bn1(m.conv1(x)))
    feats = [f0]
    for i, layer in enumerate([m.layer1, m.layer2, m.layer3, m.layer4]):
        feats.append(layer(m.maxpool(f0) if i == 0 else feats[-1]))
    sum(f.sum() for f in feats).backward()
    out = {f'f{i}': f for i, f in enumerate(feats)}
    out['xgrad'] = x.grad
    out['conv1grad'] = m.conv1.weight.grad
    out['layer4grad'] = m.layer4[-1].conv1.weight.grad
    dump(d, out, arch + '.out.json')
    if arch == 'resnet18':
        w = sd['conv1.weight']
        dump(d, {'c1': w.sum(1, keepdim=True), 'c4': torch.cat([w[:, i % 3:i % 3 + 1] for i in range(4)], 1) * (3 / 4)}, 'first.json')
print(json.dumps({'ok': True}))
`;

let made: Error | null | undefined;
/** Runs the Python side once for the file's tests (a failure fails each of them). */
function pythonSide(): void {
  if (made === undefined) made = runOnce();
  if (made) throw made;
}
function runOnce(): Error | null {
  E.manualSeed(11);
  const x = E.randn([2, 3, 32, 32]);
  dumpTensors(root, [['x', x]], 'x.json');
  x.dispose();
  try {
    runPython(PY, { dir: root });
    return null;
  } catch (e) {
    return e as Error;
  }
}

/** Max |a - b| over max |b|: the features of a random resnet50 reach ~1e2 at layer4. */
function relErr(a: E.Tensor, b: E.Tensor): number {
  return E.tidy(() => a.sub(b).abs().amax().item() / (b.abs().amax().item() + 1e-12));
}

for (const [arch, file] of [
  ['resnet18', 'resnet18.pth'],
  ['resnet50', 'resnet50.safetensors'],
]) {
  test(`${arch} from torchvision's ${file.split('.')[1]} file: features and gradients equal torchvision's`, { skip }, async () => {
    pythonSide();
    const spec = ENCODERS[arch];
    const enc = spec.build(3, 5);
    try {
      await loadEncoderWeights(enc, join(root, file), spec, arch, 3, 5);
      const ref = loadTensors(root, `${arch}.out.json`);
      const x = (loadTensors(root, 'x.json').get('x') as E.Tensor).requiresGrad_(true);
      E.tidy(() => {
        const feats = enc.features(x) as E.Tensor[];
        feats.forEach((f, i) => {
          const err = relErr(f, ref.get(`f${i}`) as E.Tensor);
          assert.ok(err < 1e-5, `${arch} feature ${i}: relative error ${err}`);
        });
        feats.reduce((s: E.Tensor, f) => s.add(f.sum()), E.scalar(0)).backward();
      });
      const named = new Map(enc.namedParameters());
      const pairs: [string, E.Tensor | null][] = [
        ['xgrad', x.grad],
        ['conv1grad', (named.get('conv1.weight') as E.Tensor).grad],
        ['layer4grad', (named.get(`layer4.${arch === 'resnet18' ? 1 : 2}.conv1.weight`) as E.Tensor).grad],
      ];
      for (const [k, g] of pairs) {
        const err = relErr(g as E.Tensor, ref.get(k) as E.Tensor);
        assert.ok(err < 1e-5, `${arch} ${k}: relative error ${err}`);
      }
      E.dispose([x, ...ref.values()]);
    } finally {
      enc.dispose();
    }
  });
}

test("1 and 4 input channels: smp's first-convolution rule (sum; cycle RGB and scale by 3/N)", { skip }, async () => {
  pythonSide();
  const spec = ENCODERS.resnet18;
  const ref = loadTensors(root, 'first.json');
  for (const [n, key] of [
    [1, 'c1'],
    [4, 'c4'],
  ] as const) {
    const enc = spec.build(n, 5);
    try {
      await loadEncoderWeights(enc, join(root, 'resnet18.pth'), spec, 'resnet18', n, 5);
      const w = enc.stateDict().get('conv1.weight') as E.Tensor;
      assert.deepEqual(w.shape, [64, n, 7, 7]);
      assert.ok(relErr(w, ref.get(key) as E.Tensor) < 1e-6, `${n} channels`);
    } finally {
      enc.dispose();
    }
  }
  E.dispose([...ref.values()]);
  assert.deepEqual(normalizationFor(3), { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] });
  assert.deepEqual(normalizationFor(4).mean, [0.485, 0.456, 0.406, 0.485]);
  assert.ok(Math.abs(normalizationFor(1).mean[0] - 0.449) < 1e-12 && Math.abs(normalizationFor(1).std[0] - 0.226) < 1e-12);
});

test('a bare torchvision file name and `imagenet` are found in the torch hub cache; smp-style encoder. keys load', { skip }, async () => {
  pythonSide();
  const hub = join(root, 'torch-home');
  mkdirSync(join(hub, 'hub', 'checkpoints'), { recursive: true });
  copyFileSync(join(root, 'resnet18.pth'), join(hub, 'hub', 'checkpoints', 'resnet18-f37072fd.pth'));
  const env = { TORCH_HOME: hub, HOME: root };
  const spec = ENCODERS.resnet18;
  const want = join(hub, 'hub', 'checkpoints', 'resnet18-f37072fd.pth');
  assert.equal(resolveEncoderWeights('imagenet', spec, 'resnet18', env), want);
  assert.equal(resolveEncoderWeights('resnet18-f37072fd.pth', spec, 'resnet18', env), want);
  // A hub folder holding a pytorch_model.bin (here the torchvision file under that name).
  const folder = join(root, 'hub-folder');
  mkdirSync(folder);
  copyFileSync(join(root, 'resnet18.pth'), join(folder, 'pytorch_model.bin'));
  assert.equal(resolveEncoderWeights(folder, spec, 'resnet18', env), join(folder, 'pytorch_model.bin'));
  const enc: Encoder = spec.build(3, 3); // depth 3: layer3/layer4 and fc are the unused keys, dropped
  try {
    await loadEncoderWeights(enc, folder, spec, 'resnet18', 3, 3);
  } finally {
    enc.dispose();
  }
});

test('missing files and keys that do not fit are clear errors', { skip }, async () => {
  pythonSide();
  const spec = ENCODERS.resnet34;
  const env = { TORCH_HOME: join(root, 'nowhere'), XDG_CACHE_HOME: join(root, 'xdg'), HOME: root };
  assert.throws(
    () => resolveEncoderWeights('imagenet', spec, 'resnet34', env),
    (e: Error) => {
      for (const part of [
        'resnet34-b627a593.pth',
        join(root, 'nowhere', 'hub', 'checkpoints'),
        join(root, 'xdg', 'torch', 'hub', 'checkpoints'),
        'https://download.pytorch.org/models/resnet34-b627a593.pth',
        'torchvision.models.resnet34(weights="IMAGENET1K_V1")',
        'Nothing is downloaded',
      ]) {
        assert.ok(e.message.includes(part), `${part} in: ${e.message}`);
      }
      return true;
    },
  );
  assert.throws(() => resolveEncoderWeights(join(root, 'no', 'such.pth'), spec, 'resnet34', env), /--encoder-weights .*no\/such\.pth: no such file or folder/);
  assert.throws(() => resolveEncoderWeights(root, spec, 'resnet34', env), /the folder holds none of model\.safetensors, pytorch_model\.bin/);
  // resnet18's file into resnet34: layer1.2 ... are missing.
  const enc = spec.build(3, 5);
  try {
    await assert.rejects(loadEncoderWeights(enc, join(root, 'resnet18.pth'), spec, 'resnet34', 3, 5), (e: Error) => {
      assert.match(e.message, /--encoder-weights resnet18\.pth \(.*\) does not fit the resnet34 encoder: the weights do not fit this model:\n {2}missing keys: layer1\.2\.conv1\.weight/);
      return true;
    });
    // resnet50's into resnet34: shapes differ.
    await assert.rejects(
      loadEncoderWeights(enc, join(root, 'resnet50.safetensors'), spec, 'resnet34', 3, 5),
      /unexpected keys: .*layer1\.0\.conv3\.weight[\s\S]*layer1\.0\.conv1\.weight: checkpoint has shape \[64,64,1,1\], model expects \[64,64,3,3\]/,
    );
  } finally {
    enc.dispose();
  }
});

test("key prefixes: DataParallel's module., an smp model's encoder.* (decoder and head dropped), torchvision's classifier and unused stages", () => {
  const spec = ENCODERS.resnet18;
  const sd = new Map(['encoder.conv1.weight', 'encoder.layer1.0.conv1.weight', 'encoder.layer4.0.conv1.weight', 'encoder.fc.weight', 'decoder.blocks.0.conv1.0.weight', 'segmentation_head.0.weight'].map((k) => [`module.${k}`, 0]));
  assert.deepEqual([...encoderKeys(sd, spec, 4).keys()], ['conv1.weight', 'layer1.0.conv1.weight']);
  assert.deepEqual(
    [
      ...encoderKeys(
        new Map([
          ['model.conv1.weight', 0],
          ['model.layer4.0.bn1.bias', 0],
        ]),
        spec,
        5,
      ).keys(),
    ],
    ['conv1.weight', 'layer4.0.bn1.bias'],
  );
});

test("a timm-layout file for a non-ResNet family is refused, saying only torchvision's layout is read", async () => {
  const file = join(root, 'timm.safetensors');
  const t = rawTensor('float32', [2], new Float32Array(2));
  await saveSafetensors(file, { 'conv_stem.weight': t, 'blocks.0.0.conv_dw.weight': t });
  const spec = { ...ENCODERS.resnet18, family: 'efficientnet' as const, torchvisionFile: 'efficientnet_b0_rwightman-3dd342df.pth' };
  const enc = spec.build(3, 5);
  try {
    await assert.rejects(
      loadEncoderWeights(enc, file, spec, 'efficientnet_b0', 3, 5),
      /none of its keys \(e\.g\. .*conv_stem\.weight.*for the efficientnet family only torchvision-layout files are read \(timm's differ\): use torchvision's file efficientnet_b0_rwightman-3dd342df\.pth/,
    );
  } finally {
    enc.dispose();
  }
});
