# The bilingual site, built from docs/ plus this run's figures, tables and executed notebook.

PAGES = sorted(str(p) for p in Path("docs").rglob("*") if p.is_file())
HOOKS = sorted(str(p) for p in Path("hooks").glob("*.py"))
# Code the pages include from the repository (--8<-- "src/...py:section"): comments and all are shown,
# so its bytes decide the site, as a page's do.
SHOWN_CODE = sorted({m for page in PAGES if page.endswith(".md")
                     for m in re.findall(r'--8<-- "(src/[^":]+)', Path(page).read_text(encoding="utf-8"))})
NOTEBOOK_STAMPS = {lang: code_stamp(f"notebook_{lang}", "notebook", {"lang": lang}, ["notebooks/explore.ipynb", *LOCALES])
                   for lang in LANGS}


rule notebook:
    input:
        summary=rules.report.output.summary,
        probe=f"{RES}/runs/se/seed{FIGURE_SEED}/probe.npz",
        model=f"{RES}/runs/se/seed{FIGURE_SEED}/model.pt",
        stamp=lambda wildcards: NOTEBOOK_STAMPS[wildcards.lang],
    output:
        update(f"{RES}/views/notebooks/explore.{{lang}}.ipynb"),
    wildcard_constraints:
        lang="|".join(LANGS),
    params:
        run_dir=run_dir_of_stamp,
        notebook="notebooks/explore.ipynb",
    log:
        f"{RES}/logs/notebook_{{lang}}.log",
    conda:
        "../environment.yml"
    shell:
        "PYTHONPATH=src python -m se_attention.notebook --lang {wildcards.lang} --source {params.notebook:q} "
        "--run-dir {params.run_dir:q} --out {output:q} > {log:q} 2>&1"


rule site:
    input:
        figures=expand(rules.figures.output, lang=LANGS),
        diagrams=expand(rules.diagrams.output, lang=LANGS),
        tables=rules.report.output,
        notebooks=expand(rules.notebook.output, lang=LANGS) if "se" in PAPER_MODELS else [],
        zoo=rules.zoo.output if outputs.has_zoo(MODELS) else [],
        explorer=rules.explorer.output,
        # The pages, hooks and MkDocs configuration by content: editing a page rebuilds the site.
        stamp=code_stamp("site", None, {}, PAGES + HOOKS + SHOWN_CODE + ["mkdocs.yml", "package-lock.json"], folder=SITE_STAMPS),
        # Every step's stamp: `snakemake site` in a fresh clone (CI) then also redraws what changed
        # code makes stale, as the default target does. Snakemake plans a missing stamp only for a
        # job that runs anyway, and file times cannot tell (see se_attention.stamps).
        stamps=lambda wildcards: stamp_paths(),
    output:
        directory(f"site/{RUN}"),
    params:
        run=RUN,
    log:
        f"{RES}/logs/site.log",
    conda:
        "../environment.yml"
    shell:
        # Plain MkDocs; hooks/run_results.py takes results/<run>/ (SE_RUN) and KaTeX from node_modules/.
        "SE_RUN={params.run:q} NO_MKDOCS_2_WARNING=1 mkdocs build --strict -d {output:q} > {log:q} 2>&1"
