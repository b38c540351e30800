"""Write the checkpoints under checkpoints/, each as it came to be in this project's history.

Run from sample_repo/: python scripts/make_checkpoints.py
"""

import argparse
import pathlib
import sys

import torch
from torch import nn

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from models.blocks import ConvBlock
from models.classifier import ModelA, ModelB
from models.tagger import Tagger

OUT = pathlib.Path(__file__).resolve().parents[1] / "checkpoints"


class TaggerV1(nn.Module):
    """The tagger before its encoder was renamed from `backbone` and its head from `classifier`."""

    def __init__(self, num_tags: int = 20, width: int = 32) -> None:
        super().__init__()
        self.backbone = nn.Sequential(ConvBlock(3, width), ConvBlock(width, width), ConvBlock(width, width))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(width, num_tags)


def main() -> None:
    torch.manual_seed(0)
    OUT.mkdir(exist_ok=True)
    model_a = ModelA()
    # Loads: the current ModelA definition.
    torch.save(model_a.state_dict(), OUT / "classifier_a.pth")
    # Code: a ModelA checkpoint registered against the grayscale ModelB.
    torch.save(model_a.state_dict(), OUT / "classifier_a_for_b.pth")
    torch.save(ModelB().state_dict(), OUT / "classifier_b.pth")
    # Code: trained with nn.DataParallel, so every key starts with "module.".
    torch.save(nn.DataParallel(Tagger()).state_dict(), OUT / "tagger_dataparallel.pt")
    # Code: saved from torch.compile(model), so every key starts with "_orig_mod.".
    torch.save(torch.compile(Tagger()).state_dict(), OUT / "tagger_compiled.pt")
    # Code: saved before the backbone/classifier -> encoder/head rename.
    torch.save(TaggerV1().state_dict(), OUT / "tagger_v1.pt")
    # Code: a training checkpoint, registered with the key the training script used to use.
    optimizer = torch.optim.SGD(model_a.parameters(), lr=0.1, momentum=0.9)
    training = {
        "epoch": 12,
        "model_state_dict": model_a.state_dict(),
        "optimizer_state_dict": optimizer.state_dict(),
    }
    torch.save(training, OUT / "classifier_a_epoch12.pt")
    # Environment: loads into the model, but torch.load(weights_only=True) refuses argparse.Namespace.
    args = argparse.Namespace(lr=0.1, epochs=12, arch="tagger")
    torch.save({"model": Tagger().state_dict(), "args": args}, OUT / "tagger_with_args.pt")
    # Repository: a download that stopped at 60 %.
    whole = (OUT / "classifier_b.pth").read_bytes()
    (OUT / "classifier_b_download.pth").write_bytes(whole[: len(whole) * 6 // 10])
    # Repository: the Git LFS pointer a clone without `git lfs pull` leaves behind.
    (OUT / "tagger_large.pt").write_text(
        "version https://git-lfs.github.com/spec/v1\n"
        "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
        "size 94371840\n"
    )


if __name__ == "__main__":
    main()
