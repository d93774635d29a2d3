"""segmentation_models_pytorch's Unet over torchvision's classification models, written from reading
smp's source (decoders/unet/decoder.py, base/modules.py, base/heads.py, base/initialization.py,
encoders/resnet.py, encoders/timm_universal.py); not a copy. Same state_dict keys as smp's Unet:
encoder.<torchvision keys> (classifier and stages past the depth left out),
decoder.blocks.{i}.conv{1,2}.{0,1}.*, segmentation_head.0.*.

The decoder upsamples each stage to the size of the skip it meets (the last block, which has none,
to the input's size); smp's older releases upsample x2, which is the same for sizes divisible by 32.
An encoder without a /2 feature (ConvNeXt) gives smp's dummy there: 0 channels at (H // 2, W // 2).
"""
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

# torchvision `features.<i>` whose outputs are the features at /2, /4, /8, /16, /32 (None: the family
# has no feature at that stride).
TAPS = {
    'efficientnet': (0, 2, 3, 5, 7),
    'mobilenet_v3_large': (1, 3, 6, 12, 16),
    'convnext': (None, 1, 3, 5, 7),
}


def family(name):
    return next((f for f in TAPS if name.startswith(f)), 'resnet')


class ResNetEncoder(nn.Module):
    """torchvision's ResNet without avgpool/fc and without the stages past `depth`; features /2../2^depth."""

    def __init__(self, name, in_channels=3, depth=5):
        super().__init__()
        net = getattr(torchvision.models, name)(weights=None)
        if in_channels != 3:
            net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.depth = depth
        for k in range(1, depth):
            setattr(self, f'layer{k}', getattr(net, f'layer{k}'))
        self.out_channels = [64] + [_width(getattr(net, f'layer{k}')) for k in range(1, depth)]

    def forward(self, x):
        feats = [self.relu(self.bn1(self.conv1(x)))]
        y = self.maxpool(feats[0])
        for k in range(1, self.depth):
            y = getattr(self, f'layer{k}')(y)
            feats.append(y)
        return feats


def _width(layer):
    last = layer[-1]
    return (last.conv3 if hasattr(last, 'conv3') else last.conv2).out_channels


class FeaturesEncoder(nn.Module):
    """torchvision's `features` (EfficientNet, MobileNetV3, ConvNeXt) up to the last tap; features at TAPS."""

    def __init__(self, name, in_channels=3, depth=5):
        super().__init__()
        net = getattr(torchvision.models, name)(weights=None)
        self.taps = TAPS[family(name)][:depth]
        self.features = net.features[: self.taps[-1] + 1]  # a prefix keeps torchvision's indices
        first = self.features[0][0]
        if in_channels != 3:
            self.features[0][0] = nn.Conv2d(in_channels, first.out_channels, first.kernel_size, first.stride, first.padding, bias=first.bias is not None)
        with torch.no_grad():
            self.eval()
            self.out_channels = [0 if f is None else f.shape[1] for f in self.forward(torch.zeros(1, in_channels, 64, 64))]
            self.train()

    def forward(self, x):
        feats = [torch.empty([x.shape[0], 0, x.shape[2] // 2, x.shape[3] // 2], dtype=x.dtype)] if self.taps[0] is None else []
        y = x
        for i, layer in enumerate(self.features):
            y = layer(y)
            if i in self.taps:
                feats.append(y)
        return feats


def conv_bn_relu(cin, cout):
    """smp's Conv2dReLU with batchnorm: Sequential(conv without bias, BN, ReLU)."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class DecoderBlock(nn.Module):
    def __init__(self, cin, cskip, cout):
        super().__init__()
        self.conv1 = conv_bn_relu(cin + cskip, cout)
        self.conv2 = conv_bn_relu(cout, cout)

    def forward(self, x, size, skip=None):
        x = F.interpolate(x, size=size, mode='nearest')
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        return self.conv2(self.conv1(x))


class UnetDecoder(nn.Module):
    def __init__(self, encoder_channels, decoder_channels):
        super().__init__()
        rev = list(encoder_channels)[::-1]
        ins = [rev[0]] + list(decoder_channels[:-1])
        skips = rev[1:] + [0]
        self.blocks = nn.ModuleList([DecoderBlock(i, s, o) for i, s, o in zip(ins, skips, decoder_channels)])

    def forward(self, feats, input_size):
        rev = feats[::-1]
        x = rev[0]
        for i, block in enumerate(self.blocks):
            skip = rev[i + 1] if i + 1 < len(rev) else None
            x = block(x, skip.shape[2:] if skip is not None else input_size, skip)
        return x


class SmpUnet(nn.Module):
    def __init__(self, encoder='resnet34', in_channels=3, classes=1, encoder_depth=5, decoder_channels=(256, 128, 64, 32, 16), head_kernel=1, normalize=None):
        super().__init__()
        self.encoder = (ResNetEncoder if family(encoder) == 'resnet' else FeaturesEncoder)(encoder, in_channels, encoder_depth)
        self.decoder = UnetDecoder(self.encoder.out_channels, list(decoder_channels)[:encoder_depth])
        self.segmentation_head = nn.Sequential(nn.Conv2d(decoder_channels[encoder_depth - 1], classes, head_kernel, padding=head_kernel // 2))
        self.normalize = normalize
        for m in self.decoder.modules():  # smp's initialize_decoder
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight, mode='fan_in', nonlinearity='relu')
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        for m in self.segmentation_head.modules():  # smp's initialize_head
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)
                nn.init.constant_(m.bias, 0)

    def forward(self, x):
        if self.normalize is not None:
            mean, std = (torch.tensor(v, dtype=x.dtype, device=x.device).view(1, -1, 1, 1) for v in self.normalize)
            x = (x - mean) / std
        return self.segmentation_head(self.decoder(self.encoder(x), x.shape[2:]))
