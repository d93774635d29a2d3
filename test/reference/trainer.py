#!/usr/bin/env python3
"""The reference trainer's loop (milesial train.py with the guide fork's accumulation), as unet-ts runs it.

Recipe: RMSprop(lr, weight_decay=1e-8, momentum=0.999, foreach=True), ReduceLROnPlateau('max',
patience) stepped with the validation Dice at each validation round, gradient-norm clipping (1.0),
loss = CE + Dice (BCE + Dice for one class), the loss divided by the accumulation count for the
backward pass. Validation rounds: every n_train // (5 * batch_size) batches, counted over all
epochs (the reference's division_step and global_step). At each epoch's end one more validation
gives the epoch's score (the fork's early-stopping evaluation; it does not step the scheduler).

Where unet-ts deliberately differs from the reference, this loop does what unet-ts does:
the accumulation remainder is flushed at the epoch's end (the fork carried it into the next
epoch), the epoch loss is the mean undivided batch loss (the fork averaged divided losses),
validation uses every image (no drop_last), and when n_train < 5 * batch_size (no rounds at all in
the reference) the scheduler steps on the epoch's score instead.

CLI (scripts/accuracy.sh): python3 test/reference/trainer.py --imgs D --masks D -e 5 -s 0.25 --save out.pth
"""
import argparse
import json
import os
import sys

import torch

if __package__ in (None, ''):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    __package__ = 'reference'  # noqa: A001 (relative imports below when run as a script)

from .evaluate import evaluate  # noqa: E402
from .loss import criterion  # noqa: E402


@torch.no_grad()
def precise_bn(model, batches):
    """BatchNorm running statistics recomputed as the plain average over `batches` of each batch's
    statistics (fvcore's update_bn_stats; PyTorch's momentum=None), weights untouched."""
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    saved = [(bn.momentum, bn.num_batches_tracked.clone()) for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
    was_training = model.training
    model.train()
    for x, _ in batches:
        model(x)
    for bn, (momentum, tracked) in zip(bns, saved):
        bn.momentum = momentum
        bn.num_batches_tracked.copy_(tracked)
    model.train(was_training)


def fit(model, epoch_batches, val_batches, n_train, batch_size, n_classes, epochs, lr, accumulate=1,
        grad_clip=1.0, lr_patience=5, weight_decay=1e-8, momentum=0.999, on_epoch=None):
    """epoch_batches(epoch) -> [(x, y)]: that epoch's training batches in order (the data order is
    the caller's). Returns the history: per-epoch loss, Dice and lr, and every validation round."""
    opt = torch.optim.RMSprop(model.parameters(), lr=lr, weight_decay=weight_decay, momentum=momentum, foreach=True)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, 'max', patience=lr_patience)
    division = n_train // (5 * batch_size)
    hist = {'epoch_loss': [], 'epoch_dice': [], 'epoch_lr': [], 'rounds': []}
    global_batch = global_step = 0
    lr_now = lambda: opt.param_groups[0]['lr']  # noqa: E731

    def optimizer_step():
        nonlocal global_step
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()
        global_step += 1

    for epoch in range(1, epochs + 1):
        model.train()
        losses, pending = [], 0
        for x, y in epoch_batches(epoch):
            if pending == 0:
                opt.zero_grad(set_to_none=True)
            loss = criterion(model(x), y, n_classes)
            (loss / accumulate if accumulate > 1 else loss).backward()
            losses.append(loss.item())
            pending += 1
            if pending == accumulate:
                optimizer_step()
                pending = 0
            global_batch += 1
            if division > 0 and global_batch % division == 0 and val_batches:
                dice = evaluate(model, val_batches, n_classes)
                sched.step(dice)
                hist['rounds'].append({'epoch': epoch, 'batch': global_batch, 'step': global_step, 'dice': dice, 'lr': lr_now()})
        if pending:
            optimizer_step()
        dice = evaluate(model, val_batches, n_classes) if val_batches else -sum(losses) / len(losses)
        if division == 0:
            sched.step(dice)
        hist['epoch_loss'].append(sum(losses) / len(losses))
        hist['epoch_dice'].append(dice)
        hist['epoch_lr'].append(lr_now())
        if on_epoch:
            on_epoch(epoch, hist)
    return hist


def main():
    from .data import Dataset
    from .model import UNet

    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--imgs', required=True)
    p.add_argument('--masks', required=True)
    p.add_argument('--mask-suffix', default='')
    p.add_argument('-e', '--epochs', type=int, default=5)
    p.add_argument('-b', '--batch-size', type=int, default=1)
    p.add_argument('-l', '--learning-rate', type=float, default=1e-5)
    p.add_argument('-s', '--scale', type=float, default=0.5)
    p.add_argument('-v', '--validation', type=float, default=10.0)
    p.add_argument('-c', '--classes', type=int, default=2)
    p.add_argument('--bilinear', action='store_true')
    p.add_argument('--accumulate-grad-batches', type=int, default=1)
    p.add_argument('--lr-patience', type=int, default=5)
    p.add_argument('--seed', type=int, default=0, help='initialisation, split and shuffling')
    p.add_argument('--threads', type=int, default=os.cpu_count())
    p.add_argument('--save', required=True, help='checkpoint written at the end ({model_state_dict, mask_values, ...})')
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    ds = Dataset(a.imgs, a.masks, a.scale, a.mask_suffix)
    if len(ds.mask_values) != max(a.classes, 2):
        sys.exit(f'{len(ds.mask_values)} mask values {ds.mask_values} do not fit -c {a.classes}')
    n_val = int(len(ds) * a.validation / 100)
    n_train = len(ds) - n_val
    g = torch.Generator().manual_seed(a.seed)
    perm = torch.randperm(len(ds), generator=g).tolist()
    train_idx, val_idx = perm[:n_train], perm[n_train:]
    x0, _ = ds[0]
    model = UNet(x0.shape[0], a.classes, a.bilinear)
    val_batches = ds.batches(val_idx, a.batch_size)

    def epoch_batches(epoch):
        order = [train_idx[i] for i in torch.randperm(n_train, generator=g).tolist()]
        return ds.batches(order, a.batch_size)

    def on_epoch(epoch, h):
        print(json.dumps({'epoch': epoch, 'loss': h['epoch_loss'][-1], 'val_dice': h['epoch_dice'][-1], 'lr': h['epoch_lr'][-1]}), flush=True)

    hist = fit(model, epoch_batches, val_batches, n_train, a.batch_size, a.classes, a.epochs, a.learning_rate,
               accumulate=a.accumulate_grad_batches, lr_patience=a.lr_patience, on_epoch=on_epoch)
    torch.save({'model_state_dict': model.state_dict(), 'mask_values': ds.mask_values, 'epoch': a.epochs,
                'loss': hist['epoch_loss'][-1], 'val_score': hist['epoch_dice'][-1],
                'model_args': {'n_channels': model.n_channels, 'n_classes': a.classes, 'bilinear': a.bilinear}}, a.save)


if __name__ == '__main__':
    main()
