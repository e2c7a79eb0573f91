# distill: a student trained from labels and its stage-1 teachers' logits of every record.
from avdistill.logs import log_to

with log_to(snakemake.log[0]):
    # Imported inside the log: TensorFlow prints as it loads.
    from avdistill.provenance import write_provenance
    from avdistill.train.distillation import run_distillation
    from avdistill.train.session import require_gpus

    require_gpus(snakemake.resources.get("gpu", 0))
    run_distillation(
        snakemake.wildcards.model,
        snakemake.params.teachers,
        snakemake.params.lambda_value,
        snakemake.params.temperature,
        snakemake.params.settings,
        snakemake.params.loader,
        snakemake.params.seed,
        snakemake.threads,
        stats_dir=snakemake.params.stats_dir,
        init_file=snakemake.params.init_file,
        lists=[snakemake.input.training, snakemake.input.validation, snakemake.input.testing],
        roots=snakemake.params.roots,
        teacher_logits=snakemake.input.teacher_logits,
        work_dir=snakemake.params.work_dir,
        weights_out=snakemake.output.weights,
        history_out=snakemake.output.history,
        test_lists=snakemake.params.test_lists,
        test_logits_out=snakemake.output.test_logits,
        teacher_weights=snakemake.params.teacher_weights,
        alpha=snakemake.params.alpha,
        teacher_declarations=snakemake.params.teacher_declarations,
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
