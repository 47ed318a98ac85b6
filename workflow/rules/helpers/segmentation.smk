# Input and params functions of the rules in segmentation.smk (only there).


def seg_train_threads(wildcards):
    """train_seg's cores (Plan.seg_train_threads)."""
    ds, run, cores = wildcards.dataset, wildcards.experiment, all_cores(wildcards)
    return PLAN.seg_train_threads(ds, run, PLAN.gpus("train_seg"), cores)
