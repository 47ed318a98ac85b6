# Input and params functions of the rules in segmentation.smk (only there).


def seg_train_threads(wildcards):
    """train_seg's cores (Plan.seg_train_threads)."""
    gpus = PLAN.gpus("train_seg")
    return PLAN.seg_train_threads(wildcards.dataset, wildcards.experiment, gpus, all_cores(wildcards))
