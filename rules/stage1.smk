# Stage 1: every network trained from labels on a split, then tested on its testing list,
# once per seed of the split: a run lives in results/stage1/{model}/{split}/seed~{seed}/.
# A job's resumable state lives in its run folder's train_state/ (not an
# output, so Snakemake never deletes it): a killed job restarts after its last epoch.
# The training job also predicts the test lists with its best weights (test_logits.npz):
# the network is in memory there, and a separate TensorFlow job per model cost more to
# start than to run. The test job scores those logits per clip without TensorFlow, so an
# edit of evaluation.clip_length re-scores every model and retrains none. For the same
# reason the training job of a stage-2 teacher (train_teacher) also writes its logits of
# every training and validation record (teacher_logits.npz): they depend on exactly what
# its training depends on, so they rerun exactly when it does. A network that teaches no
# student in this config (see TEACHER_PATTERN) skips them.
# Priorities order the ready jobs on a few cores: the stage-2 teachers first (every
# distillation waits on them), then the other trainings, the distillations (the shortest
# trainings) last, so that the run does not end with one long job on one core.


rule train_stage1:
    input:
        training="results/lists/{split}/training.txt",
        validation="results/lists/{split}/validation.txt",
        testing="results/lists/{split}/testing.txt",
        other_lists=lambda wildcards: list(other_location_lists(wildcards).values()),
        records=model_test_record_dirs,
        stats=model_stats_files,
        init=model_init_file,
    output:
        weights=f"{STAGE1_RUN}/model.weights.npz",
        history=f"{STAGE1_RUN}/history.csv",
        test_logits=f"{STAGE1_RUN}/test_logits.npz",
        provenance=f"{STAGE1_RUN}/provenance.json",
    log:
        "results/logs/stage1/{model}/{split}/seed~{seed}/train.log",
    benchmark:
        "results/benchmarks/stage1/{model}/{split}/seed~{seed}/train.tsv"
    wildcard_constraints:
        model=STUDENT_PATTERN,
    priority: 1
    conda:
        TENSORFLOW_ENV
    threads: model_threads
    resources:
        mem_mb=model_resource("mem_mb"),
        runtime=model_resource("runtime"),
        gpu=model_resource("gpu"),
    params:
        code=training_code,
        network=network_code,
        settings=model_settings,
        loader=model_loader,
        seed=lambda wildcards: int(wildcards.seed),
        roots=model_roots,
        stats_dir="results/stats/{split}",
        work_dir=f"{STAGE1_RUN}/train_state",
        test_lists=test_lists,
        invocation=INVOCATION,
        init_file=model_init_path,
    script:
        "../workflow/scripts/train_or_test.py"


use rule train_stage1 as train_teacher with:
    output:
        weights=f"{STAGE1_RUN}/model.weights.npz",
        history=f"{STAGE1_RUN}/history.csv",
        test_logits=f"{STAGE1_RUN}/test_logits.npz",
        teacher_logits=f"{STAGE1_RUN}/teacher_logits.npz",
        provenance=f"{STAGE1_RUN}/provenance.json",
    wildcard_constraints:
        model=TEACHER_PATTERN,
    priority: 2


rule test_stage1:
    input:
        weights=f"{STAGE1_RUN}/model.weights.npz",
        test_logits=f"{STAGE1_RUN}/test_logits.npz",
    output:
        metrics=f"{STAGE1_RUN}/metrics.json",
    log:
        "results/logs/stage1/{model}/{split}/seed~{seed}/test.log",
    conda:
        "../envs/avdistill.yaml"
    params:
        code=code_version("train.evaluate"),
        clip_length=lookup(dpath="evaluation/clip_length", within=config),
        run=test_run,
    script:
        "../workflow/scripts/train_or_test.py"
