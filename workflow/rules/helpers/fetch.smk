# Input and params functions of the rules in fetch.smk (only there).

from wsss.fetch.catalog import RECIPES, WEIGHTS


def saliency_overrides(wildcards):
    """The ``downloads.sources`` entry of the dataset's ``saliency_source``, or None."""
    archive = DATASETS[wildcards.dataset]["saliency_source"]
    return sources.download_overrides(config, [archive]).get(archive)
