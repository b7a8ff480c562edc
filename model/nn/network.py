"""The B-Cir U-Net (Table 1 of the paper, read out in ``shared/spec/bcir-unet-architecture.md``).

A U-Net with one 3x3 convolution per level whose skip connections are not plain
copies: each goes through its own "circular" block of four depthwise-separable
convolutions and a size-keeping max-pool before it is concatenated in the
decoder. The trunk has exactly 1,274,289 trainable parameters plus 2,432
BatchNorm running statistics (1,276,721 in Keras terms).

The malignancy head is our extension (the paper gives no classification layer):
pooled bottleneck features, a small MLP, one logit. It is kept apart from the
trunk so that the trunk alone keeps Table 1's counts.
"""

from __future__ import annotations

import torch
from torch import nn

ARCHITECTURE = "bcir-unet"
ARCHITECTURE_VERSION = "1"


class SeparableConv2d(nn.Module):
    """Depthwise 3x3 then pointwise 1x1, both without bias (Keras SeparableConv2D(use_bias=False)): 9*C + C*C params."""

    def __init__(self, channels: int, kernel_size: int = 3):
        super().__init__()
        self.depthwise = nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2, groups=channels, bias=False)
        self.pointwise = nn.Conv2d(channels, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class CircularSkip(nn.Module):
    """The skip branch of one level: SepConv-BN-ReLU, SepConv-BN-ReLU, SepConv-ReLU, SepConv, MaxPool(stride 1).

    Table 1 prints no BatchNorm after the third separable conv and no
    activation after the fourth; the counts confirm it. The size-keeping
    max-pool's window is not printed; we use 3x3 (any odd window keeps the size).
    """

    def __init__(self, channels: int, pool_size: int = 3):
        super().__init__()
        self.block = nn.Sequential(
            SeparableConv2d(channels), nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
            SeparableConv2d(channels), nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
            SeparableConv2d(channels), nn.ReLU(inplace=True),
            SeparableConv2d(channels),
            nn.MaxPool2d(pool_size, stride=1, padding=pool_size // 2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


def _conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class BCirTrunk(nn.Module):
    """Table 1 exactly: encoder, circular skips, decoder, 1x1 mask head. Returns mask logits and bottleneck features."""

    def __init__(self, *, in_channels: int = 1, base_channels: int = 16, depth: int = 5, dropout: float = 0.1, skip_pool_size: int = 3):
        super().__init__()
        widths = [base_channels * 2**i for i in range(depth)]  # 16, 32, 64, 128, 256
        self.widths = widths
        self.encoders = nn.ModuleList([_conv_bn_relu(in_channels, widths[0])])
        for i in range(1, depth):
            self.encoders.append(nn.Sequential(nn.MaxPool2d(2), nn.Dropout(dropout), _conv_bn_relu(widths[i - 1], widths[i])))
        self.skips = nn.ModuleList([CircularSkip(w, skip_pool_size) for w in widths[:-1]])
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for i in reversed(range(depth - 1)):  # level 4 .. 1
            self.ups.append(nn.ConvTranspose2d(widths[i + 1], widths[i], 3, stride=2, padding=1, output_padding=1))
            self.decoders.append(nn.Sequential(nn.Dropout(dropout), _conv_bn_relu(2 * widths[i], widths[i])))
        self.head = nn.Conv2d(widths[0], 1, 1)

    @property
    def multiple(self) -> int:
        return 2 ** (len(self.widths) - 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        skips = []
        for level, encoder in enumerate(self.encoders):
            x = encoder(x)
            if level < len(self.skips):
                skips.append(self.skips[level](x))
        bottleneck = x
        for up, decoder, skip in zip(self.ups, self.decoders, reversed(skips)):
            x = decoder(torch.cat([up(x), skip], dim=1))
        return self.head(x), bottleneck


class MalignancyHead(nn.Module):
    """p(malignant) from the bottleneck: global average and max pooling, dropout, a small MLP, one logit."""

    def __init__(self, *, in_channels: int = 256, hidden: int = 64, dropout: float = 0.2):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(2 * in_channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 1),
        )

    def forward(self, bottleneck: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([bottleneck.mean(dim=(2, 3)), bottleneck.amax(dim=(2, 3))], dim=1)
        return self.mlp(pooled[:, :, None, None]).squeeze(1)


class BCirUNet(nn.Module):
    """B-Cir U-Net with a malignancy head.

    Args:
        in_channels: input channels (1: a greyscale mammogram tile).
        base_channels: channels of level 1; doubled at each level (Table 1: 16).
        depth: levels including the bottleneck (Table 1: 5, so inputs must be multiples of 16).
        dropout: dropout before each encoder and decoder conv (Table 1: 0.1).
        skip_pool_size: window of the size-keeping max-pool that ends each circular skip.
        head_hidden: width of the malignancy head's hidden layer.
        head_dropout: dropout in the malignancy head.

    Shapes:
        input ``(N, in_channels, H, W)`` with H and W multiples of ``2**(depth-1)``;
        returns ``(mask_logits (N, 1, H, W), malignancy_logit (N,))``, both raw logits.
    """

    def __init__(self, *, in_channels: int = 1, base_channels: int = 16, depth: int = 5, dropout: float = 0.1,
                 skip_pool_size: int = 3, head_hidden: int = 64, head_dropout: float = 0.2):
        super().__init__()
        self.config = dict(in_channels=in_channels, base_channels=base_channels, depth=depth, dropout=dropout,
                           skip_pool_size=skip_pool_size, head_hidden=head_hidden, head_dropout=head_dropout)
        self.trunk = BCirTrunk(in_channels=in_channels, base_channels=base_channels, depth=depth, dropout=dropout,
                               skip_pool_size=skip_pool_size)
        self.malignancy = MalignancyHead(in_channels=self.trunk.widths[-1], hidden=head_hidden, dropout=head_dropout)

    @property
    def multiple(self) -> int:
        """Input height and width must be multiples of this (16 for Table 1)."""
        return self.trunk.multiple

    def check_input(self, x: torch.Tensor) -> None:
        # ValueError, as torch's own layers raise: a caller's bug, never a reader's input (the predictor pads every
        # tile to a multiple; TrainConfig and the model card check the tile size before any tensor is made)
        if x.ndim != 4 or x.shape[1] != self.config["in_channels"]:
            raise ValueError(f"expected input of shape (N, {self.config['in_channels']}, H, W), got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        m = self.multiple
        if h % m or w % m or h == 0 or w == 0:
            raise ValueError(
                f"input size {h}x{w} is not a multiple of {m}: the network pools {len(self.trunk.widths) - 1} times by 2; "
                f"pad to {-(-h // m) * m}x{-(-w // m) * m}"
            )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.check_input(x)
        mask_logits, bottleneck = self.trunk(x)
        return mask_logits, self.malignancy(bottleneck)


def parameter_counts(net: BCirUNet) -> dict[str, int]:
    """Trainable trunk parameters, trunk BatchNorm running statistics, head parameters."""
    bn_stats = sum(m.running_mean.numel() + m.running_var.numel() for m in net.trunk.modules() if isinstance(m, nn.BatchNorm2d))
    return {
        "trunk_trainable_params": sum(p.numel() for p in net.trunk.parameters() if p.requires_grad),
        "trunk_bn_running_stats": bn_stats,
        "head_params": sum(p.numel() for p in net.malignancy.parameters()),
    }
