"""The nuclei-segmentation network: a U-Net with ``depth`` poolings and two outputs per pixel (foreground
logit, distance to the nucleus' edge divided by its largest value).

A file of its own, importing torch alone: the plugin builds its model from it, and an exported bioimage.io
package ships it as the architecture of its ``pytorch_state_dict`` weights (``UNet(channels=16, depth=3)``).
"""

from __future__ import annotations

import torch
from torch import nn


def _block(cin: int, cout: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """Input ``(batch, 1, y, x)`` with y and x multiples of ``2 ** depth``; output ``(batch, 2, y, x)``."""

    def __init__(self, channels: int = 16, depth: int = 3) -> None:
        super().__init__()
        widths = [channels * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList([_block(1, widths[0])])
        self.down.extend(_block(widths[i], widths[i + 1]) for i in range(depth))
        self.ups = nn.ModuleList(nn.ConvTranspose2d(widths[i + 1], widths[i], 2, 2) for i in range(depth))
        self.dec = nn.ModuleList(_block(2 * widths[i], widths[i]) for i in range(depth))
        self.head = nn.Conv2d(widths[0], 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.down[0](x)]
        for layer in self.down[1:]:
            skips.append(layer(nn.functional.max_pool2d(skips[-1], 2)))
        y = skips.pop()
        for i in reversed(range(len(self.ups))):
            y = self.dec[i](torch.cat([self.ups[i](y), skips[i]], 1))
        return self.head(y)
