"""Rule record_provenance: the manifest.json of one experiment directory."""

from wsss.stages.provenance import run_record_provenance
from wsss.utils.runtime import one_line_errors, start_job

start_job(snakemake.log[0], snakemake.threads)
with one_line_errors():
    run_record_provenance(
        snakemake.output[0],
        snakemake.input.index,
        dataset=snakemake.wildcards.dataset,
        experiment=snakemake.params.experiment,
        run=snakemake.wildcards.experiment,
        seed=snakemake.params.seed,
        stages=snakemake.params.stages,
        dataset_stages=snakemake.params.dataset_stages,
        repo=snakemake.params.repo,
        device=snakemake.params.device,
        root=snakemake.params.root,
        labels_file=snakemake.params.labels_file,
    )
