"""wsss's DeepLab-v3 ASPP against torchvision's (the reference it must stay interchangeable with:
same parameter names, same initial weights for a seed, same outputs)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torchvision.models.segmentation.deeplabv3 import ASPP as TorchvisionASPP

from wsss.models.deeplab import ASPP


@pytest.mark.parametrize("train", [False, True])
def test_aspp_equals_torchvision(train: bool) -> None:
    torch.manual_seed(3)
    ours = ASPP(12, [2, 3, 5], 8)
    torch.manual_seed(3)
    reference = TorchvisionASPP(12, [2, 3, 5], 8)
    mine, theirs = ours.state_dict(), reference.state_dict()
    assert list(mine) == list(theirs)
    assert all(torch.equal(mine[k], theirs[k]) for k in mine)
    x = torch.randn(2, 12, 9, 11)
    ours.train(train), reference.train(train)
    torch.manual_seed(5)  # the projection's dropout draws in training mode
    out = ours(x)
    torch.manual_seed(5)
    assert torch.equal(out, reference(x))
    assert out.shape == (2, 8, 9, 11)


def test_building_a_deeplab_does_not_import_torchvision() -> None:
    code = (
        "import sys; from wsss.models import build_seg_model; "
        "build_seg_model('deeplab', num_classes=3, backbone={'name': 'resnet', 'depth': 10, "
        "'base_width': 4}); print('torchvision' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
