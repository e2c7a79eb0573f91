# Stage 2: audio students distilled from the stage-1 teachers of the same split, one at a
# time or an ensemble at once (stage2.ensembles: {teacher} is then e.g. dualcamnet+resnet50).
# Each teacher's logits and features are computed once per record by its training job
# (train_teacher) and reused by every student, λ, T and ensemble; a run lives in
# results/stage2/{student}/from_{teacher}/{split}/lambda~{λ}/T~{T}/seed~{seed}/ with its
# resumable state in train_state/, as in stage 1. A run under seed s learns from the
# teachers trained under seed s: seeds pair teacher and student, and the paired
# comparisons of the tables pair them the same way.


rule distill:
    input:
        training="results/lists/{split}/training.txt",
        validation="results/lists/{split}/validation.txt",
        testing="results/lists/{split}/testing.txt",
        other_lists=lambda wildcards: list(other_location_lists(wildcards).values()),
        records=model_test_record_dirs,
        stats=model_stats_files,
        init=model_init_file,
        teacher_logits=teacher_logits_files,
    output:
        weights=f"{STAGE2_RUN}/model.weights.npz",
        history=f"{STAGE2_RUN}/history.csv",
        test_logits=f"{STAGE2_RUN}/test_logits.npz",
        provenance=f"{STAGE2_RUN}/provenance.json",
    log:
        "results/logs/stage2/{model}/from_{teacher}/{split}/lambda~{lambda_value}/T~{temperature}/seed~{seed}/distill.log",
    benchmark:
        "results/benchmarks/stage2/{model}/from_{teacher}/{split}/lambda~{lambda_value}/T~{temperature}/seed~{seed}/distill.tsv"
    conda:
        TENSORFLOW_ENV
    threads: model_threads
    resources:
        mem_mb=model_resource("mem_mb"),
        runtime=model_resource("runtime"),
        gpu=model_resource("gpu"),
    params:
        code=code_version("train.distillation"),
        network=network_code,
        settings=model_settings,
        loader=model_loader,
        seed=lambda wildcards: int(wildcards.seed),
        roots=model_roots,
        stats_dir="results/stats/{split}",
        work_dir=f"{STAGE2_RUN}/train_state",
        test_lists=test_lists,
        invocation=INVOCATION,
        init_file=model_init_path,
        teachers=teachers_of,
        teacher_weights=teacher_weights,
        teacher_declarations=teacher_declarations,
        lambda_value=lambda wildcards: float(wildcards.lambda_value),
        temperature=lambda wildcards: float(wildcards.temperature),
        alpha=lookup(dpath="stage2/alpha", within=config),
    script:
        "../workflow/scripts/stage2.py"


rule test_stage2:
    input:
        weights=f"{STAGE2_RUN}/model.weights.npz",
        test_logits=f"{STAGE2_RUN}/test_logits.npz",
    output:
        metrics=f"{STAGE2_RUN}/metrics.json",
    log:
        "results/logs/stage2/{model}/from_{teacher}/{split}/lambda~{lambda_value}/T~{temperature}/seed~{seed}/test.log",
    conda:
        "../envs/avdistill.yaml"
    params:
        code=code_version("train.evaluate"),
        clip_length=lookup(dpath="evaluation/clip_length", within=config),
        run=test_run,
    script:
        "../workflow/scripts/train_or_test.py"
