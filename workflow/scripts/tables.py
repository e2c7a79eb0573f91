from avdistill.logs import log_to

with log_to(snakemake.log[0]):
    from avdistill.report.tables import write_tables

    write_tables(
        stage1=snakemake.input.stage1,
        stage2=snakemake.input.stage2,
        ablation=snakemake.input.ablation,
        outputs=dict(snakemake.output.items()),
        chance=snakemake.params.chance,
        confidence=snakemake.params.confidence,
        resamples=snakemake.params.resamples,
    )
