"""Ultralytics' ModelEMA (ultralytics/utils/torch_utils.py), written for the golden of --ema.

The average starts as a copy of the model; update k (from 1) uses d = decay * (1 - exp(-k / tau))
and sets every floating-point entry of the state dict (parameters and BatchNorm's running
statistics) to d * ema + (1 - d) * model; num_batches_tracked is copied (timm's ModelEmaV3; it
does not enter eval-mode BatchNorm).

Input (JSON on stdin): {decay, tau, init: {key: [values, shape, dtype]}, raws: [state, ...]}, the
module being nn.Sequential(Conv2d(2, 4, 3, padding=1), BatchNorm2d(4), ReLU(), Conv2d(4, 2, 1)).
Output: the average's state after each update, as flat lists by key.
"""
import copy
import json
import math
import sys

import torch
from torch import nn


class ModelEMA:
    def __init__(self, model, decay, tau):
        self.ema = copy.deepcopy(model).eval()
        self.updates = 0
        self.decay = lambda k: decay * (1 - math.exp(-k / tau))
        for p in self.ema.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model):
        self.updates += 1
        d = self.decay(self.updates)
        msd = model.state_dict()
        for k, v in self.ema.state_dict().items():
            if v.dtype.is_floating_point:
                v *= d
                v += (1 - d) * msd[k].detach()
            else:
                v.copy_(msd[k])


def to_state(sd):
    return {k: torch.tensor(v, dtype=getattr(torch, dt)).reshape(shape) for k, (v, shape, dt) in sd.items()}


def main():
    req = json.load(sys.stdin)
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 1))
    model.load_state_dict(to_state(req['init']))
    ema = ModelEMA(model, req['decay'], req['tau'])
    out = []
    for raw in req['raws']:
        model.load_state_dict(to_state(raw))
        ema.update(model)
        out.append({k: v.flatten().tolist() for k, v in ema.ema.state_dict().items()})
    print(json.dumps(out))


if __name__ == '__main__':
    main()
