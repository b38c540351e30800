"""The image classifiers: ModelA (RGB, as first trained) and ModelB (its grayscale, pooled successor)."""

from torch import nn


class ModelA(nn.Module):
    """28x28 RGB images -> class logits."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3)
        self.relu = nn.ReLU()
        self.fc1 = nn.Linear(16 * 26 * 26, num_classes)

    def forward(self, x):
        x = self.relu(self.conv1(x))
        return self.fc1(x.flatten(1))


class ModelB(nn.Module):
    """28x28 grayscale images, pooled: the definition that replaced ModelA."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(16 * 13 * 13, num_classes)

    def forward(self, x):
        x = self.pool(self.relu(self.conv1(x)))
        return self.fc1(x.flatten(1))
