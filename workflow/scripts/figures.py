from avdistill.logs import log_to

with log_to(snakemake.log[0]):
    from avdistill.report.figures import write_figures

    write_figures(
        summaries={
            "table1": snakemake.input.table1_summary,
            "table2": snakemake.input.table2_summary,
            "table3": snakemake.input.table3_summary,
            "comparisons": snakemake.input.comparisons,
        },
        table1=snakemake.input.table1,
        histories=snakemake.input.histories,
        acoustic_dirs=snakemake.input.acoustic,
        video_dirs=snakemake.input.video,
        outputs=dict(snakemake.output.items()),
    )
