#!/usr/bin/env python3
"""PyTorch side of `unet bench --reference test/reference/bench.py`: times the reference trainer's
training step (RMSprop, CE/BCE + Dice, GradScaler for fp16, unscale, clip 1.0) on synthetic data
already on the device and prints one JSON line. `--predict` mode imports this file for `UNet`.
`--encoder NAME` (`unet bench --encoder`): the same step of smp_unet.py's smp-style encoder UNet."""
import argparse
import json
import os
import sys
import time

import torch

if __package__ in (None, ''):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from reference.loss import criterion  # noqa: E402
from reference.model import UNet  # noqa: E402,F401  (bench --predict uses bench.UNet)
from reference.smp_unet import SmpUnet  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    for k, v in (('batch', 2), ('height', 256), ('width', 256), ('channels', 3), ('classes', 2), ('steps', 10), ('warmup', 3), ('threads', os.cpu_count()), ('encoder-depth', 5)):
        p.add_argument(f'--{k}', type=int, default=v)
    p.add_argument('--amp', choices=['none', 'fp16', 'bf16'], default='none')
    p.add_argument('--encoder', default='plain')
    for k in ('bilinear', 'channels-last', 'cudnn-benchmark'):
        p.add_argument(f'--{k}', action='store_true')
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.backends.cudnn.benchmark = a.cudnn_benchmark
    dev = torch.device(a.device)
    cuda = dev.type == 'cuda'
    torch.manual_seed(0)
    dtype = {'none': None, 'fp16': torch.float16, 'bf16': torch.bfloat16}[a.amp]
    fmt = torch.channels_last if a.channels_last else torch.contiguous_format
    model = (UNet(a.channels, a.classes, a.bilinear) if a.encoder == 'plain' else SmpUnet(a.encoder, a.channels, a.classes, a.encoder_depth)).to(dev, memory_format=fmt)
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-5, weight_decay=1e-8, momentum=0.999, foreach=True)
    scaler = torch.cuda.amp.GradScaler(enabled=dtype == torch.float16)
    x = torch.rand(a.batch, a.channels, a.height, a.width, device=dev).contiguous(memory_format=fmt)
    y = torch.randint(0, max(a.classes, 2), (a.batch, a.height, a.width), device=dev)
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    def step():
        with torch.autocast(dev.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            loss = criterion(model(x), y, a.classes)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(opt)
        scaler.update()
        return loss

    for _ in range(a.warmup):
        step()
    sync()
    times, cpu_times = [], []
    for _ in range(a.steps):
        c, t = time.process_time(), time.perf_counter()
        loss = step()
        sync()
        times.append(time.perf_counter() - t)
        cpu_times.append(time.process_time() - c)
    med = sorted(times)[len(times) // 2]
    print(json.dumps({'impl': 'pytorch', 'torch': torch.__version__, 'device': str(dev), 'threads': torch.get_num_threads(),
                      'batch': a.batch, 'channels': a.channels, 'height': a.height, 'width': a.width, 'classes': a.classes,
                      'amp': a.amp, 'bilinear': a.bilinear, 'channels_last': a.channels_last, 'model': 'UNet' if a.encoder == 'plain' else f'smp Unet {a.encoder}',
                      'ms_per_step': round(med * 1000, 2), 'cpu_ms_per_step': round(sorted(cpu_times)[len(cpu_times) // 2] * 1000, 2), 'img_per_s': round(a.batch / med, 2), 'loss': round(float(loss), 5)}))


if __name__ == '__main__':
    main()
