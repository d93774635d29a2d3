"""Dice formulas of milesial's utils/dice_score.py (epsilon 1e-6) and the trainer's criterion."""
import torch
import torch.nn.functional as F


def dice_coeff(inp, target, reduce_batch_first=False, epsilon=1e-6):
    """Mean Dice: one per image ([N,H,W], reduce_batch_first False) or one over the batch."""
    assert inp.size() == target.size()
    assert inp.dim() == 3 or not reduce_batch_first
    dims = (-1, -2) if inp.dim() == 2 or not reduce_batch_first else (-1, -2, -3)
    inter = 2 * (inp * target).sum(dim=dims)
    sets = inp.sum(dim=dims) + target.sum(dim=dims)
    sets = torch.where(sets == 0, inter, sets)  # empty on both sides counts as a perfect match
    return ((inter + epsilon) / (sets + epsilon)).mean()


def multiclass_dice_coeff(inp, target, reduce_batch_first=False, epsilon=1e-6):
    """[N,C,H,W] -> Dice over the N*C maps."""
    return dice_coeff(inp.flatten(0, 1), target.flatten(0, 1), reduce_batch_first, epsilon)


def dice_loss(inp, target, multiclass=False):
    fn = multiclass_dice_coeff if multiclass else dice_coeff
    return 1 - fn(inp, target, reduce_batch_first=True)


def criterion(logits, masks, n_classes):
    """CE + Dice (background included) for n_classes > 1; BCE-with-logits + Dice for 1."""
    if n_classes == 1:
        p = logits.squeeze(1)
        t = masks.float()
        return F.binary_cross_entropy_with_logits(p, t) + dice_loss(torch.sigmoid(p), t, multiclass=False)
    one_hot = F.one_hot(masks, n_classes).permute(0, 3, 1, 2).float()
    return F.cross_entropy(logits, masks) + dice_loss(F.softmax(logits, dim=1).float(), one_hot, multiclass=True)
