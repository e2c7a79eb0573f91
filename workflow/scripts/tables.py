from avdistill.logs import log_to

with log_to(snakemake.log[0]):
    from avdistill.tables import write_tables

    write_tables(
        stage1=snakemake.input.stage1,
        stage2=snakemake.input.stage2,
        ablation=snakemake.input.ablation,
        **{key: snakemake.output[key] for key in ("table1", "table1_md", "table2", "table3")},
    )
