"""Fine-tune the classifier from its last checkpoint."""

import torch
from models.classifier import ModelA


def resume() -> ModelA:
    model = ModelA()
    state = torch.load("checkpoints/classifier_a.pth", weights_only=True)
    model.load_state_dict(state)
    return model


def warm_start() -> ModelA:
    model = ModelA()
    # This file was renamed to classifier_a.pth long ago; nobody updated this line.
    model.load_state_dict(torch.load("checkpoints/classifier_best.pth"))
    return model
