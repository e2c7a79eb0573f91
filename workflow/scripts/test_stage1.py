from avdistill.logs import log_to

with log_to(snakemake.log[0]):
    # Imported inside the log: TensorFlow prints as it loads.
    from avdistill.training import evaluate, job_options

    options, pipeline_options = job_options(
        snakemake.wildcards.model,
        snakemake.params.settings,
        snakemake.params.loader,
        snakemake.params.seed,
        snakemake.threads,
        snakemake.params.stats_dir,
    )
    evaluate(
        options,
        pipeline_options,
        weights=snakemake.input.weights,
        list_path=snakemake.input.testing,
        roots=snakemake.params.roots,
        metrics_out=snakemake.output.metrics,
        clip_length=snakemake.params.clip_length,
    )
