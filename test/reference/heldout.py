#!/usr/bin/env python3
"""Scores checkpoints on held-out images with one evaluator (scripts/accuracy.sh): the reference's
validation Dice (evaluate.py, batch 1, PIL preprocessing at --scale), with BatchNorm in eval mode
(the running statistics a checkpoint holds) and in train mode (each image's own statistics).
Reads unet-ts checkpoints, the reference trainer's flat state_dicts and nested ones. One JSON line
per checkpoint."""
import argparse
import json
import os
import sys

import torch

if __package__ in (None, ''):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    __package__ = 'reference'  # noqa: A001

from .data import Dataset  # noqa: E402
from .evaluate import evaluate  # noqa: E402
from .model import UNet  # noqa: E402


def load(path):
    ck = torch.load(path, map_location='cpu')
    sd = ck['model_state_dict'] if 'model_state_dict' in ck else {k: v for k, v in ck.items() if k != 'mask_values'}
    values = ck.get('mask_values', [0, 1])
    n_classes = sd['outc.conv.weight'].shape[0]
    model = UNet(sd['inc.double_conv.0.weight'].shape[1], n_classes, 'up1.up.weight' not in sd)
    model.load_state_dict(sd, strict=True)
    return model, values, n_classes


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--imgs', required=True)
    p.add_argument('--masks', required=True)
    p.add_argument('-s', '--scale', type=float, default=0.5)
    p.add_argument('--threads', type=int, default=os.cpu_count())
    p.add_argument('models', nargs='+')
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    for path in a.models:
        model, values, n_classes = load(path)
        ds = Dataset(a.imgs, a.masks, a.scale, values=values)
        batches = ds.batches(list(range(len(ds))), 1)
        print(json.dumps({'model': path, 'images': len(ds), 'dice_eval': evaluate(model, batches, n_classes),
                          'dice_train_bn': evaluate(model, batches, n_classes, bn_train_mode=True)}), flush=True)


if __name__ == '__main__':
    main()
