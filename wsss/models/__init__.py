"""Model registries: name → class dicts for CAM classifiers and segmentation networks."""

from __future__ import annotations

from torch import nn

from wsss.models.affinity import AffinityNet, BoundaryNet
from wsss.models.backbones import BACKBONES, backbone_from_config, build_backbone, load_pretrained
from wsss.models.cam_classifier import CAMClassifier
from wsss.models.ccnet import CCNet
from wsss.models.deeplab import DeepLab
from wsss.models.eps import EPSNet
from wsss.models.pcaa import PCAA
from wsss.models.resnet import ResNet
from wsss.models.resnet38 import ResNet38
from wsss.models.seam import PCMNet

__all__ = [
    "AFFINITY_MODELS",
    "AffinityNet",
    "BoundaryNet",
    "build_affinity_model",
    "BACKBONES",
    "CAM_MODELS",
    "SEG_MODELS",
    "CAMClassifier",
    "CCNet",
    "DeepLab",
    "EPSNet",
    "PCAA",
    "ResNet",
    "ResNet38",
    "PCMNet",
    "backbone_from_config",
    "build_backbone",
    "build_cam_model",
    "build_seg_model",
    "load_pretrained",
]

SEG_MODELS: dict[str, type[nn.Module]] = {"deeplab": DeepLab, "ccnet": CCNet, "pcaa": PCAA}
# CAM network name (a checkpoint's model_name) → classifier; wsss.cam.methods names the one each
# CAM method trains (seam and cpn share PCMNet, cpn with prcm=True; eps: EPS's fg + bg head;
# smaf self-trains an eps network, so its checkpoints say "eps")
CAM_MODELS: dict[str, type[nn.Module]] = {
    "cam": CAMClassifier,
    "seam": PCMNet,
    "cpn": PCMNet,
    "eps": EPSNet,
}
# refine method → network whose output the random walk uses (features / boundary logits)
AFFINITY_MODELS: dict[str, type[nn.Module]] = {"affinitynet": AffinityNet, "irn": BoundaryNet}


def build_seg_model(name: str, **kwargs: object) -> nn.Module:
    """Build a segmentation model from :data:`SEG_MODELS` (``forward(x) -> {"out": logits}``;
    models with auxiliary heads add ``"aux"`` logits in training mode, PCAA also
    ``"bin_logits"``).

    Raises:
        KeyError: listing the valid names if ``name`` is unknown.
    """
    if name not in SEG_MODELS:
        raise KeyError(f"unknown segmentation model {name!r}; valid names: {sorted(SEG_MODELS)}")
    return SEG_MODELS[name](**kwargs)


def build_cam_model(name: str, **kwargs: object) -> nn.Module:
    """Build a CAM classifier from :data:`CAM_MODELS` (``forward`` → logits, ``cams`` → maps).

    Raises:
        KeyError: listing the valid names if ``name`` is unknown.
    """
    if name not in CAM_MODELS:
        raise KeyError(f"unknown CAM model {name!r}; valid names: {sorted(CAM_MODELS)}")
    return CAM_MODELS[name](**kwargs)


def build_affinity_model(name: str, **kwargs: object) -> nn.Module:
    """Build an affinity network from :data:`AFFINITY_MODELS` (AffinityNet → features,
    IRNet's BoundaryNet → boundary logits).

    Raises:
        KeyError: listing the valid names if ``name`` is unknown.
    """
    if name not in AFFINITY_MODELS:
        raise KeyError(f"unknown affinity model {name!r}; valid names: {sorted(AFFINITY_MODELS)}")
    return AFFINITY_MODELS[name](**kwargs)
