# Input and params functions of the rules in export.smk (only there).


def input_folder(wildcards, input):
    """The folder holding a rule's first input (what the export rules archive)."""
    return str(Path(input[0]).parent)
