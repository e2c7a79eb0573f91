# train_stage1 trains a network from labels; test_stage1 and test_stage2 test best weights.
from avdistill.logs import log_to

with log_to(snakemake.log[0]):
    # Imported inside the log: TensorFlow prints as it loads.
    from avdistill.provenance import write_provenance
    from avdistill.training import evaluate, job_options, train

    options, pipeline_options = job_options(
        snakemake.wildcards.model,
        snakemake.params.settings,
        snakemake.params.loader,
        snakemake.params.seed,
        snakemake.threads,
        snakemake.params.stats_dir,
        init_file=snakemake.params.init_file,
    )
    if snakemake.rule == "train_stage1":
        train(
            options,
            pipeline_options,
            training_list=snakemake.input.training,
            validation_list=snakemake.input.validation,
            roots=snakemake.params.roots,
            work_dir=snakemake.params.work_dir,
            weights_out=snakemake.output.weights,
            history_out=snakemake.output.history,
            testing_list=snakemake.input.testing,
        )
        write_provenance(
            snakemake.output.provenance,
            snakemake.rule,
            dict(snakemake.wildcards.items()),
            dict(snakemake.params.items()),
            dict(snakemake.input.items()),
            snakemake.config,
            snakemake.params.invocation,
        )
    else:
        evaluate(
            options,
            pipeline_options,
            weights=snakemake.input.weights,
            list_path=snakemake.input.testing,
            roots=snakemake.params.roots,
            metrics_out=snakemake.output.metrics,
            clip_length=snakemake.params.clip_length,
            other_lists=snakemake.params.other_lists,
            run=snakemake.params.run,
        )
