"""Rule make_pretrain_corpus: the ImageNet stand-in's classification corpus."""

from wsss.stages.pretrain import run_make_pretrain_corpus
from wsss.utils.runtime import one_line_errors, start_job

start_job(snakemake.log[0], snakemake.threads)
with one_line_errors():
    run_make_pretrain_corpus(snakemake.output[0], corpus=snakemake.params.corpus)
