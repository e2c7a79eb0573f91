# Stage 1: every network trained from labels on a split, then tested on its testing list.
# A job's resumable state lives in results/stage1/{model}/{split}/train_state/ (not an
# output, so Snakemake never deletes it): a killed job restarts after its last epoch.
# The training job also predicts the test lists with its best weights (test_logits.npz):
# the network is in memory there, and a separate TensorFlow job per model cost more to
# start than to run. The test job scores those logits per clip without TensorFlow, so an
# edit of evaluation.clip_length re-scores every model and retrains none. For the same
# reason a teacher's training job (train_teacher) also writes its logits of every training
# and validation record for stage 2 (teacher_logits.npz): they depend on exactly what its
# training depends on, so they rerun exactly when it does.


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
        weights="results/stage1/{model}/{split}/model.weights.npz",
        history="results/stage1/{model}/{split}/history.csv",
        test_logits="results/stage1/{model}/{split}/test_logits.npz",
        provenance="results/stage1/{model}/{split}/provenance.json",
    log:
        "results/logs/stage1/{model}/{split}/train.log",
    benchmark:
        "results/benchmarks/stage1/{model}/{split}/train.tsv"
    wildcard_constraints:
        model=STUDENT_PATTERN,
    conda:
        TENSORFLOW_ENV
    threads: model_threads
    resources:
        mem_mb=model_resource("mem_mb"),
        runtime=model_resource("runtime"),
        gpu=model_resource("gpu"),
    params:
        code=code_version("training"),
        settings=model_settings,
        loader=model_loader,
        seed=lookup(dpath="seed", within=config),
        roots=model_roots,
        stats_dir="results/stats/{split}",
        work_dir="results/stage1/{model}/{split}/train_state",
        test_lists=test_lists,
        invocation=INVOCATION,
        init_file=model_init_path,
    script:
        "../workflow/scripts/train_or_test.py"


use rule train_stage1 as train_teacher with:
    output:
        weights="results/stage1/{model}/{split}/model.weights.npz",
        history="results/stage1/{model}/{split}/history.csv",
        test_logits="results/stage1/{model}/{split}/test_logits.npz",
        teacher_logits="results/stage1/{model}/{split}/teacher_logits.npz",
        provenance="results/stage1/{model}/{split}/provenance.json",
    wildcard_constraints:
        model=TEACHER_PATTERN,
    params:
        code=code_version("teacher_logits"),


rule test_stage1:
    input:
        weights="results/stage1/{model}/{split}/model.weights.npz",
        test_logits="results/stage1/{model}/{split}/test_logits.npz",
    output:
        metrics="results/stage1/{model}/{split}/metrics.json",
    log:
        "results/logs/stage1/{model}/{split}/test.log",
    conda:
        "../envs/avdistill.yaml"
    params:
        code=code_version("training"),
        clip_length=lookup(dpath="evaluation/clip_length", within=config),
        run=lambda wildcards: {"split": wildcards.split},
    script:
        "../workflow/scripts/train_or_test.py"
