# The code stamps: each step's input names one (see code_stamp in common.smk); this writes it.


rule code_stamp:
    output:
        "{folder}/{name}",
    wildcard_constraints:
        folder=f"{RES}/code-hashes|{SITE_STAMPS}",
        name=r"[a-z0-9_]+-[0-9a-f]{16}\.txt",
    params:
        text=lambda wildcards: STAMP_TEXT[wildcards.name][1],
    log:
        "{folder}/logs/{name}.log",
    localrule: True
    run:
        atomic.write_text(output[0], params.text)
        atomic.write_text(log[0], f"{output[0]}: written\n")
