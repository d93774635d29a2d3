"""milesial's evaluate.py: validation Dice, averaged per batch, background excluded.

The binary branch squeezes the channel of the thresholded prediction (the reference compares
[N,1,H,W] with [N,H,W] and fails its size assert; its open PR #446 makes the same fix).
"""
import copy

import torch
import torch.nn.functional as F

from .loss import dice_coeff, multiclass_dice_coeff


def batch_dice(logits, masks, n_classes, threshold=0.5):
    if n_classes == 1:
        assert masks.min() >= 0 and masks.max() <= 1
        pred = (torch.sigmoid(logits.squeeze(1)) > threshold).float()
        return dice_coeff(pred, masks.float(), reduce_batch_first=False)
    assert masks.min() >= 0 and masks.max() < n_classes
    true = F.one_hot(masks, n_classes).permute(0, 3, 1, 2).float()
    pred = F.one_hot(logits.argmax(dim=1), n_classes).permute(0, 3, 1, 2).float()
    return multiclass_dice_coeff(pred[:, 1:], true[:, 1:], reduce_batch_first=False)


@torch.inference_mode()
def evaluate(net, batches, n_classes, bn_train_mode=False):
    """Mean over batches of the per-batch Dice. bn_train_mode: BatchNorm uses each batch's own
    statistics (what the weights give without the running averages)."""
    was_training = net.training
    # A train-mode forward moves the running statistics: use a copy for it.
    model = copy.deepcopy(net).train() if bn_train_mode else net.eval()
    total, n = 0.0, 0
    for x, y in batches:
        total += float(batch_dice(model(x), y, n_classes))
        n += 1
    net.train(was_training)
    return total / max(n, 1)
