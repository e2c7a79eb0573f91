# train_stage1 trains a student network from labels, train_teacher a teacher (and computes
# its logits of every training and validation record for stage 2); both predict their test
# lists. test_stage1 and test_stage2 score those predictions per clip.
from avdistill.logs import log_to

with log_to(snakemake.log[0]):
    # Imported inside the log: TensorFlow prints as it loads.
    from avdistill.provenance import write_provenance
    from avdistill.train.evaluate import score_test_logits
    from avdistill.train.fit import train
    from avdistill.train.options import job_options
    from avdistill.train.session import require_gpus
    from avdistill.train.teacher_logits import train_teacher

    if snakemake.rule in ("train_stage1", "train_teacher"):
        require_gpus(snakemake.resources.get("gpu", 0))
        options, pipeline_options = job_options(
            snakemake.wildcards.model,
            snakemake.params.settings,
            snakemake.params.loader,
            snakemake.params.seed,
            snakemake.threads,
            snakemake.params.stats_dir,
            init_file=snakemake.params.init_file,
        )
        run = dict(
            training_list=snakemake.input.training,
            validation_list=snakemake.input.validation,
            roots=snakemake.params.roots,
            work_dir=snakemake.params.work_dir,
            weights_out=snakemake.output.weights,
            history_out=snakemake.output.history,
            testing_list=snakemake.input.testing,
            test_lists=snakemake.params.test_lists,
            test_logits_out=snakemake.output.test_logits,
        )
        if snakemake.rule == "train_teacher":
            train_teacher(options, pipeline_options, teacher_logits_out=snakemake.output.teacher_logits, **run)
        else:
            train(options, pipeline_options, **run)
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
        score_test_logits(
            snakemake.wildcards.model,
            snakemake.input.test_logits,
            snakemake.input.weights,
            snakemake.output.metrics,
            snakemake.params.clip_length,
            snakemake.params.run,
        )
