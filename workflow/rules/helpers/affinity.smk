# Input and params functions of the rules in affinity.smk (only there).


def affinity_section(key):
    """A params function: ``key`` of the settings of the run's refine method."""
    return per_run(PLAN.affinity_settings, key)


def affinity_inputs(wildcards):
    """train_affinity's weight files: local ImageNet weights and/or the CAM model it copies."""
    model = affinity_section("model")(wildcards)
    files = {"pretrained": PLAN.weights_file(model) or []}
    files["cam_model"] = source_file(None, "cam_model")(wildcards) if model["init_from_cam"] else []
    return files
