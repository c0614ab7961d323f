"""The face generator: a plain ``nn.Module``, usable without Lightning.

After the "1s-S-deep" network of Dosovitskiy, Springenberg and Brox, "Learning to Generate Chairs with
Convolutional Networks" (CVPR 2015), adapted to faces: one fully connected branch per input (identity
one-hot, emotion vector, orientation as sin and cos of the yaw), concatenated, more fully connected layers
to a small grid, then blocks of 2x upsampling, a wide and a narrow convolution with batch normalization
and LeakyReLU, and a last convolution to the image with a sigmoid. There is no segmentation branch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn


class ConfigError(ValueError):
    """Generator settings that cannot build a network; the message says which value and what is allowed."""


def count_blocks(width: int, height: int, grid_width: int, grid_height: int) -> int:
    """Return the number of 2x upsampling blocks from the initial grid to the image size.

    Raises ConfigError unless width and height are the same power-of-two multiple of the grid.
    """
    if min(width, height, grid_width, grid_height) < 1:
        raise ConfigError(f"resolution {width}x{height} and grid {grid_width}x{grid_height} must be positive")
    scale_x, scale_y = width / grid_width, height / grid_height
    blocks = math.log2(scale_x) if scale_x >= 1 else -1.0
    if scale_x != scale_y or blocks < 0 or blocks != int(blocks):
        raise ConfigError(
            f"resolution {width}x{height} is not a power-of-two multiple of the initial grid {grid_width}x{grid_height}; "
            f"allowed sizes with this grid are {', '.join(f'{grid_width << k}x{grid_height << k}' for k in range(1, 8))}"
        )
    return int(blocks)


def check_config(
    width: int,
    height: int,
    grid_width: int,
    grid_height: int,
    widths: Sequence[int],
    kernels: Sequence[int],
    channels: int,
) -> int:
    """Validate the settings that shape the network, before any data is read; return the block count."""
    blocks = count_blocks(width, height, grid_width, grid_height)
    if not isinstance(widths, (list, tuple)) or not all(isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in widths):
        raise ConfigError(f"model.widths must be a list of positive integers, one per block, got {widths!r}")
    if len(widths) < blocks:
        raise ConfigError(
            f"model.widths has {len(widths)} entries but resolution {width}x{height} needs {blocks} blocks "
            f"from the {grid_width}x{grid_height} grid; give at least {blocks} widths"
        )
    if not isinstance(kernels, (list, tuple)) or len(kernels) != 2 or not all(isinstance(k, int) and k > 0 and k % 2 == 1 for k in kernels):
        raise ConfigError(f"model.kernels must be two odd positive integers (the wide and the narrow convolution), got {kernels!r}")
    if channels not in (1, 3):
        raise ConfigError(f"channels must be 1 (greyscale) or 3 (RGB), got {channels!r}")
    return blocks


class UpsampleBlock(nn.Sequential):
    """2x nearest upsampling, then a wide and a narrow convolution, each with batch norm and LeakyReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernels: Sequence[int], negative_slope: float) -> None:
        wide, narrow = kernels
        super().__init__(
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(in_channels, out_channels, wide, padding=wide // 2, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.LeakyReLU(negative_slope, inplace=True),
            nn.Conv2d(out_channels, out_channels, narrow, padding=narrow // 2, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.LeakyReLU(negative_slope, inplace=True),
        )


class Generator(nn.Module):
    """Draws a (channels, height, width) image in [0, 1] from identity, emotion and orientation vectors."""

    def __init__(
        self,
        num_identities: int,
        num_emotions: int,
        channels: int = 3,
        width: int = 64,
        height: int = 64,
        grid_width: int = 4,
        grid_height: int = 4,
        embed_dim: int = 512,
        fc_dims: Sequence[int] = (1024, 1024),
        grid_channels: int = 256,
        widths: Sequence[int] = (256, 128, 64, 32),
        kernels: Sequence[int] = (5, 3),
        negative_slope: float = 0.2,
    ) -> None:
        super().__init__()
        widths, kernels, fc_dims = list(widths), list(kernels), list(fc_dims)
        blocks = check_config(width, height, grid_width, grid_height, widths, kernels, channels)
        self.num_identities, self.num_emotions, self.channels = num_identities, num_emotions, channels
        self.width, self.height = width, height
        self.grid_channels, self.grid_width, self.grid_height = grid_channels, grid_width, grid_height

        def dense(in_features: int, out_features: int) -> nn.Sequential:
            return nn.Sequential(nn.Linear(in_features, out_features), nn.LeakyReLU(negative_slope, inplace=True))

        self.identity_fc = dense(num_identities, embed_dim)
        self.emotion_fc = dense(num_emotions, embed_dim)
        self.orientation_fc = dense(2, embed_dim)

        layers, features = [], 3 * embed_dim
        for size in fc_dims:
            layers.append(dense(features, size))
            features = size
        layers.append(dense(features, grid_channels * grid_height * grid_width))
        self.fc = nn.Sequential(*layers)

        stages, in_channels = [], grid_channels
        for out_channels in widths[:blocks]:
            stages.append(UpsampleBlock(in_channels, out_channels, kernels, negative_slope))
            in_channels = out_channels
        self.deconv = nn.Sequential(*stages)
        self.to_image = nn.Conv2d(in_channels, channels, 3, padding=1)

    def forward(self, identity: torch.Tensor, emotion: torch.Tensor, orientation: torch.Tensor) -> torch.Tensor:
        """identity: (B, num_identities), emotion: (B, num_emotions), orientation: (B, 2) as (sin, cos) of yaw."""
        code = torch.cat([self.identity_fc(identity), self.emotion_fc(emotion), self.orientation_fc(orientation)], dim=1)
        grid = self.fc(code).view(-1, self.grid_channels, self.grid_height, self.grid_width)  # (B, C0, h0, w0)
        return torch.sigmoid(self.to_image(self.deconv(grid)))  # (B, channels, height, width)
