"""Goldens for the ConvNeXt encoder (src/model/encoders/convnext.ts) from Debian torchvision 0.14.

torchvision's convnext_tiny with random weights of torchvision's distribution, perturbed so that
every parameter matters: layer_scale from 1e-6 to U(0.1, 0.5) (else the blocks add ~nothing to the residual
stream), LayerNorm weights/biases away from 1/0 and conv/linear biases away from 0 (else a
misused one would go unseen). Features are taken after features.1/3/5/7 (/4, /8, /16, /32), in
eval mode, and a backward of sum_i (feature_i * r_i) with fixed random r_i gives the gradients.
"""
import torch
import torch.nn.functional as F
from torch import nn
import torchvision
from torchvision.models.convnext import LayerNorm2d

STAGES = (1, 3, 5, 7)


def perturbed_convnext_tiny(seed):
    # torchvision's trunc_normal_(std=0.02) truncates at +-2, 100 standard deviations: a plain
    # normal_ draws the same distribution, without its erfinv over 28M values (seconds of the suite)
    trunc_normal = nn.init.trunc_normal_
    nn.init.trunc_normal_ = lambda t, *args, **kwargs: t
    try:
        m = torchvision.models.convnext_tiny()
    finally:
        nn.init.trunc_normal_ = trunc_normal
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.endswith('layer_scale'):
                p.uniform_(0.1, 0.5)
            elif p.dim() == 1 and name.endswith('weight'):  # LayerNorm / LayerNorm2d
                p.uniform_(0.5, 1.5)
            elif name.endswith('bias'):
                p.normal_(0, 0.05)
            else:
                p.normal_(0, 0.02)
    return m.eval()


def features_golden(seed, n, h, w, grad_keys):
    """The state dict as `sd.<key>`, input `x`, weights `r<i>`, features `f<i>`, `x.grad`, `grad.<key>`
    (the parameters in grad_keys), and the blocks' stochastic depth probabilities `sd_prob` (in block order)."""
    m = perturbed_convnext_tiny(seed)
    out = {f'sd.{k}': v for k, v in m.state_dict().items()}
    params = dict(m.named_parameters())
    m.requires_grad_(False)  # the other weights' gradients would only cost time
    for k in grad_keys:
        params[k].requires_grad_(True)
    x = torch.randn(n, 3, h, w, requires_grad=True)
    feats, y = [], x
    for i, layer in enumerate(m.features):
        y = layer(y)
        if i in STAGES:
            feats.append(y)
    loss = 0
    for i, f in enumerate(feats):
        r = torch.randn_like(f)
        out[f'r{i}'], out[f'f{i}'] = r, f
        loss = loss + (f * r).sum()
    loss.backward()
    out['x'], out['x.grad'] = x, x.grad
    for k in grad_keys:
        out[f'grad.{k}'] = params[k].grad
    blocks = [b for i in STAGES for b in m.features[i]]
    out['sd_prob'] = torch.tensor([b.stochastic_depth.p for b in blocks], dtype=torch.float64)
    return out


def _grads(prefix, y, inputs, out):
    """out[prefix] = y; out[prefix.g] = the weights of the backward; out[prefix.grad.<name>] per input."""
    g = torch.randn_like(y)
    y.backward(g)
    out[prefix], out[f'{prefix}.g'] = y, g
    for name, t in inputs.items():
        out[f'{prefix}.grad.{name}'] = t.grad


def ops_golden(seed):
    """F.gelu (exact), F.layer_norm over the last dim, nn.Linear on a 4-d channels-last input and
    torchvision's LayerNorm2d: inputs, weights, outputs, and the gradients of sum(y * g)."""
    torch.manual_seed(seed)
    out = {}
    x = (torch.randn(4, 300) * 3).requires_grad_()
    out['gelu.x'] = x
    _grads('gelu', F.gelu(x), {'x': x}, out)

    x = torch.randn(2, 3, 5, 16).mul(2).add(1).requires_grad_()
    w, b = torch.rand(16).add(0.5).requires_grad_(), torch.randn(16).requires_grad_()
    out.update({'ln.x': x, 'ln.weight': w, 'ln.bias': b})
    _grads('ln', F.layer_norm(x, [16], w, b, 1e-6), {'x': x, 'weight': w, 'bias': b}, out)

    lin = torch.nn.Linear(16, 24)
    x = torch.randn(2, 3, 5, 16, requires_grad=True)
    out.update({'linear.x': x, 'linear.weight': lin.weight, 'linear.bias': lin.bias})
    _grads('linear', lin(x), {'x': x, 'weight': lin.weight, 'bias': lin.bias}, out)

    ln2d = LayerNorm2d(16, eps=1e-6)
    with torch.no_grad():
        ln2d.weight.uniform_(0.5, 1.5)
        ln2d.bias.normal_()
    x = torch.randn(2, 16, 5, 7).mul(2).add(1).requires_grad_()
    out.update({'ln2d.x': x, 'ln2d.weight': ln2d.weight, 'ln2d.bias': ln2d.bias})
    _grads('ln2d', ln2d(x), {'x': x, 'weight': ln2d.weight, 'bias': ln2d.bias}, out)
    return out
