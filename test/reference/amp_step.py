"""Golden values for test/train.amp.test.ts: training steps of the reference recipe (RMSprop
lr, weight decay 1e-8, momentum 0.999, gradient clipping 1.0, the forward and the loss under
autocast) from given initial weights, one full batch per step, under CPU bf16 autocast and in fp32.

JSON on stdin: weights (a flat state_dict .pth), imgs, masks, n_channels, n_classes, bilinear,
width_divisor, lr, steps. Prints JSON: {"bf16": {"losses", "weights"}, "fp32": {...}}.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from reference.data import Dataset  # noqa: E402
from reference.loss import criterion  # noqa: E402
from reference.model import UNet  # noqa: E402


def run(req, bf16):
    ds = Dataset(req['imgs'], req['masks'], 1.0)
    x, y = ds.batches(list(range(len(ds))), len(ds))[0]
    torch.manual_seed(0)
    model = UNet(req['n_channels'], req['n_classes'], req['bilinear'], req['width_divisor'])
    sd = torch.load(req['weights'])
    model.load_state_dict({k: v for k, v in sd.items() if k != 'mask_values'})
    opt = torch.optim.RMSprop(model.parameters(), lr=req['lr'], weight_decay=1e-8, momentum=0.999, foreach=True)
    model.train()
    losses = []
    for _ in range(req['steps']):
        opt.zero_grad(set_to_none=True)
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
            loss = criterion(model(x), y, req['n_classes'])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
    weights = {k: v.detach().float().flatten().tolist() for k, v in model.state_dict().items() if v.is_floating_point()}
    return {'losses': losses, 'weights': weights}


if __name__ == '__main__':
    req = json.load(sys.stdin)
    torch.set_num_threads(2)
    print(json.dumps({'bf16': run(req, True), 'fp32': run(req, False)}))
