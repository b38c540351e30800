"""A small multi-label tagger with a convolutional encoder, trained with DataParallel on two GPUs."""

from torch import nn

from models.blocks import ConvBlock


class Tagger(nn.Module):
    def __init__(self, num_tags: int = 20, width: int = 32) -> None:
        super().__init__()
        self.encoder = nn.Sequential(ConvBlock(3, width), ConvBlock(width, width), ConvBlock(width, width))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(width, num_tags)

    def forward(self, x):
        return self.head(self.pool(self.encoder(x)).flatten(1))
