"""The criterion with ignored pixels and class weights (unet train --ignore-index / --class-weights).

Multi-class: PyTorch's own F.cross_entropy(weight=, ignore_index=) plus the Dice loss over the
counted pixels (probabilities and one-hot targets zeroed where ignored). Binary: BCE-with-logits
on the counted pixels only (boolean indexing), per-pixel weights weight[target], plus the Dice
over the counted pixels. Without ignored pixels and weights both equal loss.criterion.
"""
import torch
import torch.nn.functional as F

from reference.loss import dice_loss


def masked_criterion(logits, masks, n_classes, weight=None, ignore_index=-100):
    valid = masks != ignore_index
    target = masks.clamp(min=0)
    v = valid.float()
    if n_classes == 1:
        p = logits.squeeze(1)
        t = target.float()
        w = None if weight is None else weight[target][valid]
        bce = F.binary_cross_entropy_with_logits(p[valid], t[valid], weight=w)
        return bce + dice_loss(torch.sigmoid(p) * v, t * v, multiclass=False)
    ce = F.cross_entropy(logits, masks, weight=weight, ignore_index=ignore_index)
    one_hot = F.one_hot(target, n_classes).permute(0, 3, 1, 2).float() * v.unsqueeze(1)
    return ce + dice_loss(F.softmax(logits, dim=1) * v.unsqueeze(1), one_hot, multiclass=True)
