# The paper's tables (tidy CSV + a Markdown table 1), the figures, and what the HTML report
# shows (snakemake --report results/report.zip).


rule tables:
    input:
        stage1=stage1_targets(),
        stage2=stage2_default_targets(),
        ablation=stage2_ablation_targets(),
    output:
        table1=report(
            "results/table1.csv",
            caption="../workflow/report/table1.rst",
            category="Tables",
        ),
        table1_md="results/table1.md",
        table2=report(
            "results/table2.csv",
            caption="../workflow/report/table2.rst",
            category="Tables",
        ),
        table3=report(
            "results/table3.csv",
            caption="../workflow/report/table3.rst",
            category="Tables",
        ),
    log:
        "results/logs/tables/tables.log",
    conda:
        "../envs/avdistill.yaml"
    params:
        code=code_version("tables"),
    script:
        "../workflow/scripts/tables.py"


rule figures:
    input:
        table1="results/table1.csv",
        table2="results/table2.csv",
        table3="results/table3.csv",
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
        code=code_version("figures"),
    script:
        "../workflow/scripts/figures.py"
