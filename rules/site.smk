# The bilingual site, built from docs/ plus this run's figures and tables.


rule site:
    input:
        figures=expand(rules.figures.output, lang=LANGS),
        tables=rules.report.output,
        pages=sorted(str(p) for p in Path("docs").rglob("*") if p.is_file()),
        mkdocs="mkdocs.yml",
        stamp=code_stamp("site", ["site"], {}),
    output:
        directory(f"site/{RUN}"),
    log:
        f"{RES}/logs/site.log",
    shell:
        "{PYTHON} -m se_attention.site build --run-dir {RES} --out {output} > {log} 2>&1"
