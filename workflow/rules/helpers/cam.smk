# Input and params functions of the rules in cam.smk (only there).


def from_plan(answer):
    """An input/params function: ``answer(PLAN, dataset, run)``, its one-line ValueError a
    WorkflowError."""

    def lookup(wildcards):
        try:
            return answer(PLAN, wildcards.dataset, wildcards.experiment)
        except ValueError as error:
            raise WorkflowError(str(error)) from None

    return lookup


saliency_dir = from_plan(Plan.saliency_dir)
saliency_input = from_plan(sources.saliency_input)


def cda_bank(wildcards):
    settings = PLAN.cda(wildcards.dataset, wildcards.experiment)
    return settings["bank"] if settings else []


def cam_settings(key):
    """A params function: ``key`` of the CAM settings of the run's method."""
    return per_run(PLAN.cam_settings, key)
