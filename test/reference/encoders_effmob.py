"""Goldens for the EfficientNet / MobileNetV3 encoders (test/model.encoders-effmob.test.ts): Debian
torchvision 0.14's models with random weights and BatchNorm statistics that matter.

stdin JSON: {dir, seed, n, h, w, cases: [arch, ...], structure: [arch, ...]}. Per case it
writes <arch>.weights.json (the full state dict, classifier included), <arch>.data.json (input x
and one fixed random weight per feature), then for mode in (eval, train) the features, the
gradients of sum_i <feature_i, weight_i> with respect to x and to a few parameters, and (train) the
running statistics after the forward pass. Train mode runs with every stochastic depth p set to 0.
Prints {structure: {arch: {keys, shapes, bn: {module: [eps, momentum]}, sd: {module: p}}}, picked: {arch: [param keys]}}.
"""
import copy
import json
import sys

import torch
import torchvision
from torchvision.ops import StochasticDepth

# dump(): test/helpers/exchange.ts's PY_EXCHANGE, which the test puts before this file.

TAPS = {'efficientnet': [0, 2, 3, 5, 7], 'mobilenet': [1, 3, 6, 12, 16]}


def taps(arch):
    return TAPS['efficientnet' if arch.startswith('efficientnet') else 'mobilenet']


def used(key, arch):
    return key.startswith('features.') and int(key.split('.')[1]) <= taps(arch)[-1]


def randomise(m, calib):
    """BN affine and conv biases random; then, in one eval pass over `calib`, each BN's running statistics
    set to those of its own input (so activations stay O(1) through every stage), then perturbed."""
    with torch.no_grad():
        for c in m.modules():
            if isinstance(c, torch.nn.BatchNorm2d):
                c.weight.uniform_(0.5, 1.5)
                c.bias.normal_(0, 0.2)
                c.num_batches_tracked.fill_(3)
            elif isinstance(c, torch.nn.Conv2d) and c.bias is not None:
                c.bias.normal_(0, 0.2)

    def calibrate(b, inputs):
        x = inputs[0]
        b.running_var.copy_(x.var((0, 2, 3), unbiased=False).clamp_min(0.05) * torch.empty(x.shape[1]).uniform_(0.8, 1.25))
        b.running_mean.copy_(x.mean((0, 2, 3)) + 0.1 * b.running_var.sqrt() * torch.randn(x.shape[1]))

    hooks = [b.register_forward_pre_hook(calibrate) for b in m.modules() if isinstance(b, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        m.eval().features(calib)
    for h in hooks:
        h.remove()


def features(m, x, arch):
    out, y = [], x
    for i, layer in enumerate(m.features[: taps(arch)[-1] + 1]):
        y = layer(y)
        if i in taps(arch):
            out.append(y)
    return out


def run_case(d, arch, req):
    torch.manual_seed(req['seed'])
    m = getattr(torchvision.models, arch)()
    x = torch.rand(req['n'], 3, req['h'], req['w'])
    randomise(m, torch.rand(8, 3, req['h'], req['w']))
    sd = copy.deepcopy(m.state_dict())
    dump(d, sd, f'{arch}.weights.json')
    ws = [torch.randn_like(f) for f in features(m.eval(), x, arch)]
    dump(d, {'x': x, **{f'w{i}': w for i, w in enumerate(ws)}}, f'{arch}.data.json')
    keys = [k for k, _ in m.named_parameters() if used(k, arch)]
    picked = sorted({keys[0], keys[1], keys[len(keys) // 3], keys[len(keys) // 2], keys[-1], next(k for k in keys if 'fc1.bias' in k)})
    for mode in ('eval', 'train'):
        m.load_state_dict(sd)
        m.train(mode == 'train')
        for s in m.modules():
            if isinstance(s, StochasticDepth):
                s.p = 0.0
        m.zero_grad(set_to_none=True)
        xg = x.clone().requires_grad_(True)
        feats = features(m, xg, arch)
        sum((f * w).sum() for f, w in zip(feats, ws)).backward()
        dump(d, {f'f{i}': f for i, f in enumerate(feats)}, f'{arch}.{mode}.features.json')
        grads = {'x': xg.grad, **{k: p.grad for k, p in m.named_parameters() if k in picked}}
        dump(d, grads, f'{arch}.{mode}.grads.json')
        if mode == 'train':
            dump(d, {k: v for k, v in m.state_dict().items() if used(k, arch) and 'running' in k}, f'{arch}.train.stats.json')
    return picked


def structure(arch):
    m = getattr(torchvision.models, arch)()
    sd = m.state_dict()
    return {
        'keys': list(sd.keys()),
        'shapes': [list(v.shape) for v in sd.values()],
        'bn': {n: [b.eps, b.momentum] for n, b in m.named_modules() if isinstance(b, torch.nn.BatchNorm2d)},
        'sd': {n: s.p for n, s in m.named_modules() if isinstance(s, StochasticDepth)},
    }


def main():
    req = json.load(sys.stdin)
    torch.set_num_threads(1)  # tiny inputs: one thread is faster, and far faster on a busy machine
    picked = {arch: run_case(req['dir'], arch, req) for arch in req['cases']}
    print(json.dumps({'structure': {a: structure(a) for a in req['structure']}, 'picked': picked}))


if __name__ == '__main__':
    main()
