"""Goldens for --loss (src/train/losses.ts): focal+dice, tversky and lovasz in plain torch, written from
segmentation_models_pytorch's definitions (softmax_focal_loss_with_logits / focal_loss_with_logits,
TverskyLoss with alpha = beta = 0.5 and gamma 1, LovaszLoss with per_image False). Ignored pixels
carry -100 and are taken out before anything is computed, as smp does with its ignore_index."""
import torch
import torch.nn.functional as F

from reference.loss import dice_loss

IGNORED = -100


def _weighted_mean(values, weight):
    return values.mean() if weight is None else (values * weight).sum() / weight.sum()


def focal_dice(logits, masks, weight=None, gamma=2.0):
    """Multiclass: softmax focal averaged over the valid pixels (weighted like cross_entropy's weight) + Dice."""
    keep = masks != IGNORED
    target = torch.where(keep, masks, torch.zeros_like(masks))
    logpt = F.log_softmax(logits, dim=1).gather(1, target.unsqueeze(1)).squeeze(1)
    focal = (1 - logpt.exp()) ** gamma * -logpt
    w = keep.float() if weight is None else weight[target] * keep.float()
    focal = (focal * w).sum() / w.sum()
    v = keep.unsqueeze(1).float()
    one_hot = F.one_hot(target, logits.shape[1]).permute(0, 3, 1, 2).float() * v
    return focal + dice_loss(F.softmax(logits, dim=1) * v, one_hot, multiclass=True)


def binary_focal_dice(logits, masks, gamma=2.0):
    """-c 1: sigmoid focal (no alpha) averaged over the valid pixels + the binary Dice term."""
    pred = logits.squeeze(1)
    keep = masks != IGNORED
    p, t = pred[keep], masks[keep].float()
    logpt = F.binary_cross_entropy_with_logits(p, t, reduction='none')
    focal = ((1 - torch.exp(-logpt)) ** gamma * logpt).mean()
    v = keep.float()
    return focal + dice_loss(torch.sigmoid(pred) * v, masks.clamp(min=0).float() * v, multiclass=False)


def tversky(logits, masks, weight=None, alpha=0.5, beta=0.5, gamma=1.0, eps=1e-7):
    """One Tversky index per class over the batch; classes absent from the targets contribute 0."""
    n, c = logits.shape[0], logits.shape[1]
    keep = (masks != IGNORED).reshape(n, 1, -1).float()
    if c == 1:
        probs = torch.sigmoid(logits).reshape(n, 1, -1)
        truth = masks.clamp(min=0).reshape(n, 1, -1).float()
    else:
        probs = F.softmax(logits, dim=1).reshape(n, c, -1)
        truth = F.one_hot(masks.clamp(min=0).reshape(n, -1), c).permute(0, 2, 1).float()
    probs, truth = probs * keep, truth * keep
    tp = (probs * truth).sum(dim=(0, 2))
    fp = (probs * (1 - truth)).sum(dim=(0, 2))
    fn = ((1 - probs) * truth).sum(dim=(0, 2))
    loss = 1 - tp / (tp + alpha * fp + beta * fn).clamp_min(eps)
    loss = loss * (truth.sum(dim=(0, 2)) > 0).float()
    return _weighted_mean(loss, None if c == 1 else weight) ** gamma


def _lovasz_grad(gt_sorted):
    total = gt_sorted.sum()
    inter = total - gt_sorted.cumsum(0)
    union = total + (1 - gt_sorted).cumsum(0)
    jac = 1 - inter / union
    if len(gt_sorted) > 1:
        jac = torch.cat([jac[:1], jac[1:] - jac[:-1]])
    return jac


def lovasz_hinge(logits, masks):
    keep = masks.reshape(-1) != IGNORED
    x = logits.reshape(-1)[keep]
    y = masks.reshape(-1)[keep].float()
    if y.numel() == 0:
        return logits.sum() * 0
    errors = 1 - x * (2 * y - 1)
    srt, perm = torch.sort(errors, descending=True)
    return torch.dot(F.relu(srt), _lovasz_grad(y[perm]))


def lovasz_softmax(logits, masks, weight=None):
    c = logits.shape[1]
    probs = F.softmax(logits, dim=1).movedim(1, -1).reshape(-1, c)
    labels = masks.reshape(-1)
    keep = labels != IGNORED
    probs, labels = probs[keep], labels[keep]
    terms, present = [], []
    for k in range(c):
        fg = (labels == k).float()
        if fg.sum() == 0:
            continue
        srt, perm = torch.sort((fg - probs[:, k]).abs(), descending=True)
        terms.append(torch.dot(srt, _lovasz_grad(fg[perm])))
        present.append(k)
    if not terms:
        return logits.sum() * 0
    return _weighted_mean(torch.stack(terms), None if weight is None else weight[present])


def loss_by_name(name, logits, masks, weight=None):
    binary = logits.shape[1] == 1
    if name == 'focal+dice':
        return binary_focal_dice(logits, masks) if binary else focal_dice(logits, masks, weight)
    if name == 'tversky':
        return tversky(logits, masks, weight)
    if name == 'lovasz':
        return lovasz_hinge(logits, masks) if binary else lovasz_softmax(logits, masks, weight)
    raise ValueError(name)
