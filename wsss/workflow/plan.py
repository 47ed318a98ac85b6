"""The workflow's plan: what the (validated) config asks for, answered without Snakemake.

Which run feeds CAMs, pseudo masks, a teacher or CDA instances to which; which jobs and files a
run owns; which settings each stage gets (background thresholds, CAM method sections, seg model
entries, threads). The rule files ask a :class:`Plan` and hold no policy of their own; the plan
reads no files, so every answer is unit-tested on small hand-written configs
(tests/workflow/test_plan.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from wsss.cam.methods import CAM_METHODS
from wsss.cluster import rule_resources
from wsss.fetch.pretrained import pretrained_file
from wsss.workflow.datasets import dataset_experiments, seg_settings
from wsss.workflow.paths import dataset_path, run_path
from wsss.workflow.runs import SEPARATOR, dataset_runs, parse_run, run_experiment, source_run

__all__ = ["Plan", "SaliencyNeeded", "TRAINED"]

Job = tuple[str, str]  # (run, rule)

# training rule → (report panel, the loss log it writes)
TRAINED = {
    "train_cam": ("CAM classifier", "cam_log"),
    "train_smaf": ("CAM classifier", "cam_log"),
    "train_affinity": ("affinity / boundary network", "affinity_log"),
    "train_seg": ("segmentation network", "seg_log"),
}


class SaliencyNeeded(ValueError):
    """A run's CAM method needs saliency maps that its dataset does not name."""


def _unique(jobs: list[Job]) -> list[Job]:
    out: list[Job] = []
    for job in jobs:
        if job not in out:
            out.append(job)
    return out


class Plan:
    """Answers about one merged, validated workflow config (``config.yaml`` + overlays).

    Runs are ``<experiment>`` or ``<experiment>@<seed>`` (:mod:`wsss.workflow.runs`).
    """

    def __init__(self, config: Mapping) -> None:
        self.config = config
        self.datasets: Mapping = config["datasets"]
        self.experiments: Mapping = config["experiments"]

    # -- runs -------------------------------------------------------------------------------

    def spec(self, run: str) -> Mapping:
        """The config entry of a run's experiment."""
        return self.experiments[run_experiment(run)]

    def runs(self, dataset: str) -> list[str]:
        """The runs of the experiments ``dataset`` runs (each at each of its seeds)."""
        chosen = dataset_experiments(self.config, dataset)
        return dataset_runs(self.config, dataset, chosen)

    def run_seed(self, dataset: str, run: str) -> int:
        """The seed a run trains with: its experiment's seed, or the one after ``@``."""
        return parse_run(self.config, dataset, run)[1]

    def run_seeds(self, dataset: str) -> dict[str, list]:
        """Every run of the dataset → ``[experiment, seed]`` (collect_metrics' map)."""
        return {run: list(parse_run(self.config, dataset, run)) for run in self.runs(dataset)}

    def run_pattern(self, predicate: Callable[[Mapping], bool] = lambda spec: True) -> str:
        """Wildcard regex of the runs of the experiments whose spec satisfies ``predicate``."""
        names = [name for name, spec in self.experiments.items() if predicate(spec)]
        if not names:
            return "(?!)"  # matches nothing
        return f"(?:{'|'.join(map(re.escape, names))})(?:{SEPARATOR}[0-9]+)?"

    # -- which run feeds which ----------------------------------------------------------------

    def source(self, dataset: str, run: str, key: str) -> str:
        """The run that ``experiments.<experiment>.<key>`` names (teacher, instances_from, ...)
        at the seed of ``run``."""
        return source_run(self.config, dataset, run, key)

    def cam_source(self, dataset: str, run: str) -> str:
        """The run whose CAMs ``run`` uses: the run of its cams_from, or itself."""
        if "cams_from" not in self.spec(run):
            return run
        return self.source(dataset, run, "cams_from")

    def mask_source(self, dataset: str, run: str) -> str:
        """The run whose pseudo masks a weak run trains on: the run of its masks_from, or
        itself."""
        if "masks_from" not in self.spec(run):
            return run
        return self.source(dataset, run, "masks_from")

    def seg_masks(self, dataset: str, run: str) -> str | None:
        """The pseudo masks train_seg reads; None for full supervision (ground truth)."""
        if self.spec(run)["supervision"] == "full":
            return None
        return run_path("pseudo_masks", dataset, self.mask_source(dataset, run))

    # -- settings of the CAM stages -------------------------------------------------------------

    def cam_method(self, run: str) -> str:
        """A run's CAM method (``cam_method``; default ``cam``, IRN's classifier)."""
        return self.spec(run).get("cam_method", "cam")

    def cam_section(self, dataset: str, run: str) -> Mapping:
        """The CAM settings of the run's method: ``datasets.<dataset>.cam`` for ``cam``,
        ``datasets.<dataset>.cam_methods.<method>`` otherwise."""
        spec, method = self.datasets[dataset], self.cam_method(run)
        return spec["cam"] if method == "cam" else spec["cam_methods"][method]

    def cam_settings(self, dataset: str, run: str, key: str):
        """``key`` of :meth:`cam_section` (None where that section lacks it)."""
        return self.cam_section(dataset, run).get(key)

    def needs_saliency(self, dataset: str, run: str) -> bool:
        """Whether the run's CAM method learns from saliency maps, as its registry entry says
        for its loss settings (EPS; SMAF with prototype+saliency denoising). The one place the
        workflow decides it."""
        entry = CAM_METHODS[self.cam_method(run)]
        loss = self.cam_settings(dataset, run, "loss") if entry.takes_loss else None
        return entry.needs_saliency(loss)

    def saliency_dir(self, dataset: str, run: str) -> str | None:
        """The dataset's saliency folder for a run that needs saliency maps, else None.

        Raises:
            SaliencyNeeded: the run needs them and ``datasets.<dataset>.saliency_dir`` is unset.
        """
        if not self.needs_saliency(dataset, run):
            return None
        folder = self.datasets[dataset].get("saliency_dir")
        if not folder:
            raise SaliencyNeeded(
                f"experiment {run!r} ({self.cam_method(run)}) needs saliency maps: set "
                f"datasets.{dataset}.saliency_dir (e.g. SALImages, PFAN maps as EPS uses)"
            )
        return folder

    def runs_without_saliency(self, dataset: str) -> list[str]:
        """The experiments of ``dataset`` whose CAM method reads no saliency maps (what to run
        when there are none)."""
        return [
            name
            for name in dataset_experiments(self.config, dataset)
            if not self.needs_saliency(dataset, name)
        ]

    def cda(self, dataset: str, run: str) -> dict | None:
        """train_cam's CDA settings (``datasets.<dataset>.cda`` plus the instance bank), or
        None for a run without ``augment: cda``."""
        if self.spec(run).get("augment", "none") != "cda":
            return None
        return dict(self.datasets[dataset]["cda"], bank=run_path("cda_bank", dataset, run))

    def cam_bg_threshold(self, dataset: str, run: str, section: tuple[str, ...]) -> float:
        """The background threshold applied to the CAMs behind ``run``'s masks: the CAM
        method's own ``bg_threshold`` where it sets one (softmax maps of eps/smaf), else
        ``datasets.<dataset>.<section...>.bg_threshold`` (``("cam", "eval")`` or
        ``("pseudo_labels",)``)."""
        masks = self.mask_source(dataset, run)
        method = self.cam_method(self.cam_source(dataset, masks))
        spec = self.datasets[dataset]
        if method != "cam" and "bg_threshold" in spec["cam_methods"][method]:
            return spec["cam_methods"][method]["bg_threshold"]
        node = spec
        for key in section:
            node = node[key]
        return node["bg_threshold"]

    def pseudo_bg_threshold(self, dataset: str, run: str) -> float | None:
        """The background score behind the pseudo masks (None: PSA's α plane has none)."""
        refine = self.spec(self.mask_source(dataset, run))["refine"]
        if refine == "crf":
            return self.cam_bg_threshold(dataset, run, ("pseudo_labels",))
        return self.datasets[dataset]["affinity"][refine]["walk"].get("bg_threshold")

    # -- settings of refinement and segmentation ----------------------------------------------

    def crf_preset(self, dataset: str) -> Mapping:
        """The CRF parameter set ``datasets.<dataset>.pseudo_labels.crf`` names."""
        return self.config["crf_presets"][self.datasets[dataset]["pseudo_labels"]["crf"]]

    def crf_labels(self, dataset: str, run: str) -> str:
        """The label set of ``run``'s pseudo-mask CRF: the CAM method's ``crf_labels`` where it
        sets one (smaf: ``all``, as released), else ``image`` (IRN's K_img + 1)."""
        method = self.cam_method(self.cam_source(dataset, run))
        if method == "cam":
            return "image"
        return self.datasets[dataset]["cam_methods"][method].get("crf_labels", "image")

    def affinity_settings(self, dataset: str, run: str, key: str):
        """``datasets.<dataset>.affinity.<the run's refine>.<key>``."""
        return self.datasets[dataset]["affinity"][self.spec(run)["refine"]][key]

    def affinity_crf_preset(self, dataset: str, run: str) -> Mapping:
        """The CRF parameter set of the affinity labels (``labels.crf``)."""
        return self.config["crf_presets"][self.affinity_settings(dataset, run, "labels")["crf"]]

    def seg_model(self, dataset: str, run: str) -> dict:
        """The run's seg model entry without its train/infer overrides."""
        model = self.datasets[dataset]["seg"]["models"][self.spec(run)["seg_model"]]
        return {k: v for k, v in model.items() if k not in ("train", "infer")}

    def seg_settings(self, dataset: str, run: str, key: str) -> dict:
        """``datasets.<dataset>.seg.<key>`` (train or infer) with the run's seg model
        overrides."""
        return seg_settings(self.datasets[dataset], self.spec(run)["seg_model"], key)

    def split_masks(self, dataset: str, stage: str) -> str:
        """The ground-truth mask folder of the split a stage uses (``stage_splits.<stage>``)."""
        spec = self.datasets[dataset]
        return spec["splits"][spec["stage_splits"][stage]]

    def weights_file(self, model: Mapping) -> str | None:
        """The weights file a model entry loads (a table name → ``<weights.cache>/<name>.pth``,
        written by fetch_weights; wsss.fetch.pretrained.pretrained_file), or None."""
        cache = self.config["weights"]["cache"].rstrip("/")
        return pretrained_file(model["pretrained"], model["net"]["backbone"], cache)

    def with_weights(self, model: Mapping) -> dict:
        """A model entry with ``pretrained`` resolved to the file it loads."""
        return {**model, "pretrained": self.weights_file(model)}

    # -- cores and priorities -------------------------------------------------------------------

    def resources(self, rule: str) -> dict:
        """A rule's ``resources:`` (config ``resources:``, :func:`wsss.cluster.rule_resources`)."""
        return rule_resources(self.config.get("resources"), rule)

    def gpus(self, rule: str) -> int:
        """The GPUs a rule's job asks for (0 without ``gpu``)."""
        return int(self.resources(rule).get("gpu", 0) or 0)

    @staticmethod
    def training_threads(train: Mapping, gpus: int, cores: int) -> int:
        """The cores a training job keeps busy: per process (one per GPU) its torch threads
        (``train.threads``, fixed so that results do not depend on the cores) plus its
        data-loader workers; at most ``cores``. Reserving all cores for a one-thread job would
        only keep the other cores idle."""
        per_rank = int(train.get("threads", 1)) + int(train.get("num_workers", 0))
        return min(cores, max(1, gpus) * per_rank)

    def seg_train_threads(self, dataset: str, run: str, gpus: int, cores: int) -> int:
        """Cores for train_seg. A fully supervised run depends on nothing but the data, so where
        the dataset also runs weak experiments it gets one core and runs beside the CAM chain;
        weak-label training takes the cores it uses (:meth:`training_threads`), as does fully
        supervised training on a dataset without weak experiments (Cityscapes, ADE20K)."""
        runs = dataset_experiments(self.config, dataset)
        beside_cams = any(self.experiments[name]["supervision"] == "weak" for name in runs)
        if self.spec(run)["supervision"] == "full" and beside_cams:
            return 1
        return self.training_threads(self.seg_settings(dataset, run, "train"), gpus, cores)

    def seg_train_priority(self, run: str) -> int:
        """Training on pseudo masks before fully supervised training, which nothing waits for
        (the CAM chain comes first of all: :data:`CAM_CHAIN_PRIORITY` in common.smk)."""
        return 1 if self.spec(run)["supervision"] == "weak" else 0

    # -- the jobs and files of a run ------------------------------------------------------------

    def cam_jobs(self, dataset: str, run: str) -> list[Job]:
        """The jobs that make the CAM maps ``run`` refines, in pipeline order."""
        source = self.cam_source(dataset, run)
        if source != run:
            return self.cam_jobs(dataset, source)
        spec = self.spec(run)
        jobs: list[Job] = []
        if spec.get("augment") == "cda":
            instances = self.source(dataset, run, "instances_from")
            jobs += self.mask_jobs(dataset, instances) + [(run, "make_instance_bank")]
        if spec.get("cam_method") == "smaf":
            teacher = self.source(dataset, run, "teacher")
            jobs += self.cam_jobs(dataset, teacher) + [(run, "train_smaf")]
        else:
            jobs.append((run, "train_cam"))
        return _unique(jobs + [(run, "infer_cam")])

    def mask_jobs(self, dataset: str, run: str) -> list[Job]:
        """The jobs that make the pseudo masks ``run`` trains on."""
        source = self.mask_source(dataset, run)
        if source != run:
            return self.mask_jobs(dataset, source)
        if self.spec(run)["refine"] == "crf":
            refine = ["make_pseudo_labels"]
        else:
            refine = ["make_affinity_labels", "train_affinity", "random_walk"]
        return _unique(self.cam_jobs(dataset, run) + [(run, step) for step in refine])

    def evaluates_cams(self, dataset: str, run: str) -> bool:
        """Whether ``run`` evaluates CAMs of its own (weak, own masks, own CAMs)."""
        return self.evaluates_masks(dataset, run) and self.cam_source(dataset, run) == run

    def evaluates_masks(self, dataset: str, run: str) -> bool:
        """Whether ``run`` evaluates pseudo masks of its own (weak, no masks_from)."""
        weak = self.spec(run)["supervision"] == "weak"
        return weak and self.mask_source(dataset, run) == run

    def jobs(self, dataset: str, run: str) -> list[Job]:
        """Every job behind the metric rows of ``run``: the jobs making its CAMs and masks (in
        other runs too), its own evaluations, its seg training and evaluation."""
        jobs: list[Job] = []
        if self.spec(run)["supervision"] == "weak":
            jobs += self.mask_jobs(dataset, run)
        if self.evaluates_cams(dataset, run):
            jobs.append((run, "eval_cam"))
        if self.evaluates_masks(dataset, run):
            jobs.append((run, "eval_pseudo_labels"))
        return _unique(jobs + [(run, step) for step in ("train_seg", "infer_seg", "eval_seg")])

    def own_steps(self, dataset: str, run: str) -> list[str]:
        """The rules that run for ``run`` itself (not for the runs it builds on)."""
        return [step for owner, step in self.jobs(dataset, run) if owner == run]

    def metric_files(self, dataset: str, run: str) -> list[str]:
        """The metric CSVs of ``run`` (the CAM, pseudo-mask and seg tables it makes)."""
        files = []
        if self.evaluates_cams(dataset, run):
            files.append(run_path("cam_metrics", dataset, run))
        if self.evaluates_masks(dataset, run):
            files.append(run_path("pseudo_metrics", dataset, run))
        return files + [run_path("seg_metrics", dataset, run)]

    def dataset_metric_files(self, dataset: str) -> list[str]:
        """What the dataset's miou.csv gathers: the metric CSVs of all its runs."""
        return [path for run in self.runs(dataset) for path in self.metric_files(dataset, run)]

    def manifests(self, dataset: str) -> list[str]:
        return [run_path("manifest", dataset, run) for run in self.runs(dataset)]

    # -- report and export ----------------------------------------------------------------------

    def curve_files(self, dataset: str) -> dict[str, str]:
        """Run → threshold curve, for the runs that evaluate their own CAMs."""
        return {
            run: run_path("cam_curve", dataset, run)
            for run in self.runs(dataset)
            if self.evaluates_cams(dataset, run)
        }

    def loss_logs(self, dataset: str) -> dict[str, dict[str, str]]:
        """Report panel → run → train_log.csv of every network the dataset's runs train."""
        panels: dict[str, dict[str, str]] = {panel: {} for panel, _ in TRAINED.values()}
        for run in self.runs(dataset):
            for step in self.own_steps(dataset, run):
                if step in TRAINED:
                    panel, artifact = TRAINED[step]
                    panels[panel][run] = run_path(artifact, dataset, run)
        return panels

    def gallery_folders(self, dataset: str) -> dict[str, dict[str, str | None]]:
        """Run → the CAM maps and pseudo masks it builds on (None for full supervision) and
        its predictions."""
        folders = {}
        for run in self.runs(dataset):
            weak = self.spec(run)["supervision"] == "weak"
            masks = self.mask_source(dataset, run) if weak else None
            folders[run] = {
                "cams": (
                    run_path("cam_maps", dataset, self.cam_source(dataset, masks)) if weak else None
                ),
                "masks": run_path("pseudo_masks", dataset, masks) if weak else None,
                "predictions": run_path("seg_predictions", dataset, run),
            }
        return folders

    def experiment_facts(self, dataset: str) -> dict[str, dict]:
        """Experiment → the config facts the report table spells out (with the CRF preset name
        of CRF-refined pseudo masks)."""
        facts = {}
        for name in dataset_experiments(self.config, dataset):
            spec = dict(self.experiments[name])
            if spec.get("refine") == "crf":
                spec["crf"] = self.datasets[dataset]["pseudo_labels"]["crf"]
            facts[name] = spec
        return facts

    @staticmethod
    def report_files(dataset: str) -> list[str]:
        """The report outputs of one dataset (rule all builds them for default_datasets)."""
        base = dataset_path("report", dataset)
        pngs = ("per_class_iou", "threshold_curves", "loss_curves")
        return [f"{base}/metrics.html", f"{base}/gallery"] + [f"{base}/{n}.png" for n in pngs]

    def export_entries(self, dataset: str) -> list[str]:
        """What export_dataset archives under results/<dataset>/: miou.csv, the dataset index,
        the report figures, the cost table with its benchmark files and the folders of the
        dataset's runs (not the generated dataset tree)."""
        listed = [dataset_path(key, dataset) for key in ("miou", "index", "report", "cost")]
        listed.append(dataset_path("benchmarks", dataset))
        prefix = len(f"results/{dataset}/")
        return [path[prefix:] for path in listed] + self.runs(dataset)
