"""Stage orchestrators: one ``run_<rule>`` per Snakemake rule.

They loop over image ids, read inputs, call the pure library functions and write artifacts
atomically. They know nothing of Snakemake or the config file: every value is an argument.
"""
