# The bilingual site, built from docs/ plus this run's figures, tables and executed notebook.


rule notebook:
    input:
        notebook="notebooks/explore.{lang}.ipynb",
        summary=rules.report.output.summary,
        probe=f"{RES}/runs/se/seed{FIGURE_SEED}/probe.npz",
        model=f"{RES}/runs/se/seed{FIGURE_SEED}/model.pt",
    output:
        f"{RES}/notebooks/explore.{{lang}}.ipynb",
    wildcard_constraints:
        lang="|".join(LANGS),
    log:
        f"{RES}/logs/notebook_{{lang}}.log",
    shell:
        # No timing metadata: re-running on unchanged results then leaves the committed notebook unchanged.
        "SE_RUN_DIR=$PWD/{RES} jupyter nbconvert --to notebook --execute --ExecutePreprocessor.record_timing=False "
        "{input.notebook} "
        "--output-dir {RES}/notebooks --output explore.{wildcards.lang}.ipynb > {log} 2>&1"


rule site:
    input:
        figures=expand(rules.figures.output, lang=LANGS),
        tables=rules.report.output,
        notebooks=expand(rules.notebook.output, lang=LANGS) if "se" in MODELS else [],
        pages=sorted(str(p) for p in Path("docs").rglob("*") if p.is_file()),
        hooks=sorted(str(p) for p in Path("hooks").glob("*.py")),
        mkdocs="mkdocs.yml",
        stamp=code_stamp("site", ["site"], {}),
    output:
        directory(f"site/{RUN}"),
    log:
        f"{RES}/logs/site.log",
    shell:
        "{PYTHON} -m se_attention.site build --run-dir {RES} --out {output} > {log} 2>&1"
