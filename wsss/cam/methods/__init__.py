"""CAM methods: what an experiment's ``cam_method`` names, in one registry.

Each entry says which network the method trains, how the report names it, whether it learns
from saliency maps, and which module holds its training recipe for rule ``train_cam``: the
module's ``step_loss(loss)`` returns the ``loss_fn(model, batch)`` of one training step and its
``transform(train, loss)`` the sample transform (``loss``/``train``: the method's settings,
``datasets.<name>.cam_methods.<method>``; ``datasets.<name>.cam`` for ``cam``).

This module imports no torch: Snakemake, the config checks and the report ask it which methods
exist and which need saliency; only the stage that trains a method imports its recipe module.
Adding a method: its recipe module beside these, one entry in :data:`CAM_METHODS`, its settings
in the config schema (README, "Add your own CAM method").
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType

__all__ = ["CAM_METHODS", "CamMethod", "get_method"]


def _never(loss: Mapping | None) -> bool:
    return False


def _always(loss: Mapping | None) -> bool:
    return True


def _denoises_with_saliency(loss: Mapping | None) -> bool:
    return loss["denoise"] == "prototype+saliency"


@dataclass(frozen=True)
class CamMethod:
    """One CAM method.

    Attributes:
        name: the ``cam_method`` value.
        label: how the report names its classifier.
        network: the :data:`wsss.models.CAM_MODELS` key it trains, also the checkpoint's
            ``model_name`` from which inference rebuilds it.
        recipe: the module of its ``step_loss`` and ``transform`` for rule ``train_cam``; None
            for a method that another stage trains (``teacher`` set).
        network_args: constructor arguments the method fixes (CPN: ``prcm=True``).
        takes_loss: whether its settings have a ``loss`` section the recipe reads.
        saliency: its ``loss`` settings → whether training reads the dataset's saliency maps.
        teacher: SMAF: the method of the experiment whose network it self-trains (rule
            ``train_smaf``, on that teacher's fused maps) instead of a ``train_cam`` recipe.
    """

    name: str
    label: str
    network: str
    recipe: str | None = None
    network_args: Mapping[str, object] = field(default_factory=dict)
    takes_loss: bool = True
    saliency: Callable[[Mapping | None], bool] = _never
    teacher: str | None = None

    def needs_saliency(self, loss: Mapping | None) -> bool:
        """Whether training with these ``loss`` settings reads saliency maps."""
        return self.saliency(loss)

    def training_parts(self, loss: Mapping | None, train: Mapping) -> tuple[Callable, Callable]:
        """(``loss_fn(model, batch)``, sample transform) of rule ``train_cam`` for ``loss`` and
        ``train`` settings; ``loss_fn`` returns the loss, or a dict of its terms with the total
        under ``"loss"``."""
        if self.recipe is None:
            raise ValueError(
                f"CAM method {self.name!r} self-trains its {self.teacher} teacher's network "
                "(rule train_smaf), not a train_cam classifier"
            )
        if self.takes_loss and not loss:
            raise ValueError(
                f"CAM method {self.name!r} needs its loss settings (cam_methods.{self.name}.loss)"
            )
        recipe: ModuleType = importlib.import_module(self.recipe)
        return recipe.step_loss(loss), recipe.transform(train, loss)


CAM_METHODS: dict[str, CamMethod] = {
    method.name: method
    for method in (
        CamMethod(
            "cam",
            "IRN (plain CAM)",
            network="cam",
            recipe="wsss.cam.methods.irn",
            takes_loss=False,
        ),
        CamMethod(
            "seam",
            "SEAM",
            network="seam",
            recipe="wsss.cam.methods.seam",
            network_args={"prcm": False},
        ),
        CamMethod(
            "cpn",
            "CPN",
            network="cpn",
            recipe="wsss.cam.methods.cpn",
            network_args={"prcm": True},
        ),
        CamMethod("eps", "EPS", network="eps", recipe="wsss.cam.methods.eps", saliency=_always),
        CamMethod("smaf", "SMAF", network="eps", teacher="eps", saliency=_denoises_with_saliency),
    )
}


def get_method(name: str) -> CamMethod:
    """The :data:`CAM_METHODS` entry of ``name``; ``ValueError`` listing the names if unknown."""
    if name not in CAM_METHODS:
        raise ValueError(f"unknown CAM method {name!r}; choose from {sorted(CAM_METHODS)}")
    return CAM_METHODS[name]
