#!/usr/bin/env python3
"""PyTorch side of `unet bench --encoder NAME --reference scripts/smp_unet_reference.py`: one training
step of the smp-style encoder UNet (test/reference/smp_unet.py, our transcription of
segmentation_models_pytorch's Unet over torchvision's ResNets) with the reference trainer's recipe:
RMSprop(lr 1e-5, weight decay 1e-8, momentum 0.999), CE + Dice (BCE + Dice for one class), GradScaler
for fp16, unscale, gradient-norm clip 1.0. Synthetic data already on the device; median of --steps.
Takes the flags of ../shared/bench/unet_reference.py plus --encoder and --encoder-depth; prints one JSON line.
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test'))
from reference.smp_unet import SmpUnet  # noqa: E402


def soft_dice(prob, onehot, eps=1e-6):
    """Mean over (image, class) of 2|A.B| / (|A| + |B|), an empty pair counting as 1 (the reference's dice_coeff)."""
    inter = 2 * (prob * onehot).sum(dim=(-1, -2))
    total = prob.sum(dim=(-1, -2)) + onehot.sum(dim=(-1, -2))
    total = torch.where(total == 0, inter, total)
    return ((inter + eps) / (total + eps)).mean()


def loss_of(logits, y, classes):
    if classes == 1:
        p = logits.squeeze(1)
        return F.binary_cross_entropy_with_logits(p, y.float()) + 1 - soft_dice(torch.sigmoid(p).float(), y.float())
    onehot = F.one_hot(y, classes).permute(0, 3, 1, 2).float()
    return F.cross_entropy(logits, y) + 1 - soft_dice(F.softmax(logits, 1).float(), onehot)


def parse():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    for name, default in [('batch', 8), ('height', 256), ('width', 256), ('channels', 3), ('classes', 2), ('steps', 20), ('warmup', 5), ('threads', os.cpu_count()), ('encoder-depth', 5)]:
        p.add_argument(f'--{name}', type=int, default=default)
    p.add_argument('--amp', choices=['none', 'fp16', 'bf16'], default='none')
    p.add_argument('--encoder', default='resnet34')
    p.add_argument('--decoder-channels', default='256,128,64,32,16')
    for flag in ['--channels-last', '--cudnn-benchmark', '--bilinear', '--compile']:
        p.add_argument(flag, action='store_true')
    return p.parse_args()


def main():
    a = parse()
    torch.set_num_threads(a.threads)
    torch.backends.cudnn.benchmark = a.cudnn_benchmark
    dev = torch.device(a.device)
    cuda = dev.type == 'cuda'
    torch.manual_seed(0)
    amp = {'none': None, 'fp16': torch.float16, 'bf16': torch.bfloat16}[a.amp]
    widths = [int(c) for c in a.decoder_channels.split(',')][:a.encoder_depth]
    m = SmpUnet(a.encoder, a.channels, a.classes, a.encoder_depth, widths).to(dev)
    if a.channels_last:
        m = m.to(memory_format=torch.channels_last)
    opt = torch.optim.RMSprop(m.parameters(), lr=1e-5, weight_decay=1e-8, momentum=0.999)
    scaler = torch.cuda.amp.GradScaler(enabled=cuda and amp == torch.float16)
    net = torch.compile(m) if a.compile else m
    x = torch.rand(a.batch, a.channels, a.height, a.width, device=dev)
    if a.channels_last:
        x = x.to(memory_format=torch.channels_last)
    y = torch.randint(0, max(a.classes, 2), (a.batch, a.height, a.width), device=dev)
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    def step():
        with torch.autocast(dev.type, dtype=amp or torch.bfloat16, enabled=amp is not None):
            loss = loss_of(net(x), y, a.classes)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        scaler.step(opt)
        scaler.update()
        return loss

    for _ in range(a.warmup):
        step()
    sync()
    times = []
    for _ in range(a.steps):
        t = time.perf_counter()
        loss = step()
        sync()
        times.append(time.perf_counter() - t)
    med = sorted(times)[len(times) // 2]
    print(json.dumps(dict(impl='pytorch', model=f'smp Unet {a.encoder}', torch=torch.__version__, device=str(dev), threads=torch.get_num_threads(),
                          batch=a.batch, channels=a.channels, height=a.height, width=a.width, classes=a.classes, amp=a.amp,
                          encoder=a.encoder, encoder_depth=a.encoder_depth, ms_per_step=round(med * 1000, 2), img_per_s=round(a.batch / med, 2),
                          loss=round(float(loss.detach()), 5))))


if __name__ == '__main__':
    main()
