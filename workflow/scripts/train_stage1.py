from avdistill.logs import log_to

with log_to(snakemake.log[0]):
    # Imported inside the log: TensorFlow prints as it loads.
    from avdistill.training import job_options, train

    options, pipeline_options = job_options(
        snakemake.wildcards.model,
        snakemake.params.settings,
        snakemake.params.loader,
        snakemake.params.seed,
        snakemake.threads,
        snakemake.params.stats_dir,
    )
    train(
        options,
        pipeline_options,
        training_list=snakemake.input.training,
        validation_list=snakemake.input.validation,
        roots=snakemake.params.roots,
        work_dir=snakemake.params.work_dir,
        weights_out=snakemake.output.weights,
        history_out=snakemake.output.history,
    )
