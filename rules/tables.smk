# The paper's tables (tidy per-run CSVs, per-cell summaries with intervals, paired
# comparisons), summary.md (the paper's claims, with verdicts), the figures, and what the
# HTML report shows (snakemake --report results/report.zip).


rule tables:
    input:
        stage1=stage1_targets(),
        stage2=stage2_default_targets(),
        ablation=stage2_ablation_targets(),
    output:
        table1="results/table1.csv",
        table1_summary=report(
            "results/table1_summary.csv",
            caption="../workflow/report/table1.rst",
            category="Tables",
        ),
        table1_md="results/table1.md",
        table2="results/table2.csv",
        table2_summary=report(
            "results/table2_summary.csv",
            caption="../workflow/report/table2.rst",
            category="Tables",
        ),
        table3="results/table3.csv",
        table3_summary=report(
            "results/table3_summary.csv",
            caption="../workflow/report/table3.rst",
            category="Tables",
        ),
        table4="results/table4.csv",
        table4_summary=report(
            "results/table4_summary.csv",
            caption="../workflow/report/table4.rst",
            category="Tables",
        ),
        table4_md="results/table4.md",
        comparisons=report(
            "results/comparisons.csv",
            caption="../workflow/report/comparisons.rst",
            category="Tables",
        ),
        comparisons_md="results/comparisons.md",
        summary=report(
            "results/summary.md",
            caption="../workflow/report/summary.rst",
            category="Summary",
        ),
    log:
        "results/logs/tables/tables.log",
    conda:
        "../envs/avdistill.yaml"
    params:
        code=code_version("report.tables", "report.claims"),
        chance=1 / number_of_actions(),
        confidence=lookup(dpath="evaluation/confidence", within=config),
        resamples=lookup(dpath="evaluation/bootstrap_resamples", within=config),
    script:
        "../workflow/scripts/tables.py"


rule figures:
    input:
        table1="results/table1.csv",
        table1_summary="results/table1_summary.csv",
        table2_summary="results/table2_summary.csv",
        table3_summary="results/table3_summary.csv",
        comparisons="results/comparisons.csv",
        metrics=stage1_targets() + stage2_default_targets(),
        histories=training_histories(),
        acoustic=record_dirs(["acoustic"], LOCATIONS),
        video=record_dirs(["video"], LOCATIONS),
    output:
        table1=report(
            "results/figures/table1_accuracy.png",
            caption="../workflow/report/fig_table1.rst",
            category="Figures",
        ),
        table2=report(
            "results/figures/table2_generalisation.png",
            caption="../workflow/report/fig_table2.rst",
            category="Figures",
        ),
        table3=report(
            "results/figures/table3_ablation.png",
            caption="../workflow/report/fig_table3.rst",
            category="Figures",
        ),
        confusion=report(
            "results/figures/confusion_matrices.png",
            caption="../workflow/report/fig_confusion.rst",
            category="Figures",
        ),
        curves=report(
            "results/figures/training_curves.png",
            caption="../workflow/report/fig_curves.rst",
            category="Figures",
        ),
        comparisons=report(
            "results/figures/comparisons.png",
            caption="../workflow/report/fig_comparisons.rst",
            category="Figures",
        ),
        overlays=report(
            "results/figures/acoustic_overlays.png",
            caption="../workflow/report/fig_overlays.rst",
            category="Figures",
        ),
    log:
        "results/logs/tables/figures.log",
    conda:
        "../envs/avdistill.yaml"
    params:
        code=code_version("report.figures"),
    script:
        "../workflow/scripts/figures.py"
