# Input and params functions of the rules in cam.smk (only there).


def saliency_dir(wildcards):
    """The dataset's saliency folder where the run's CAM method needs one (Plan.saliency_dir)."""
    try:
        return PLAN.saliency_dir(wildcards.dataset, wildcards.experiment)
    except ValueError as error:
        raise WorkflowError(str(error)) from None


def saliency_input(wildcards):
    """A real dataset's saliency maps as an input, so that a missing source is reported before
    any work: the manifest of rule fetch_saliency where ``saliency_source`` names an archive,
    else the folder itself. The synthetic generator writes it inside the dataset folder."""
    folder = saliency_dir(wildcards)
    spec = DATASETS[wildcards.dataset]
    if folder is None or "synthetic" in spec:
        return []
    if spec.get("saliency_source"):
        return dataset_path("saliency", wildcards.dataset)
    path = Path(spec["root"]) / folder
    if not path.is_dir():
        others = PLAN.runs_without_saliency(wildcards.dataset)
        raise WorkflowError(
            f"experiment {wildcards.experiment!r} needs saliency maps in {path}: PFAN "
            f"salient-object maps, one <id>.png per {spec['stage_splits']['train']} image, "
            "which EPS's authors distribute (github.com/halbielee/EPS, 'Saliency maps'); set "
            f"datasets.{wildcards.dataset}.saliency_source: pfan_voc to fetch them (or "
            "downloads.sources.pfan_voc.path to a local copy of the archive), or leave eps and "
            f"smaf out: datasets.{wildcards.dataset}.experiments: {others}"
        )
    return str(path)


def cda_bank(wildcards):
    settings = PLAN.cda(wildcards.dataset, wildcards.experiment)
    return settings["bank"] if settings else []


def cam_settings(key):
    """A params function: ``key`` of the CAM settings of the run's method."""
    return per_run(PLAN.cam_settings, key)
