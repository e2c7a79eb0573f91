rule synthesize_dataset:
    output:
        directory("resources/dataset"),
    log:
        "results/logs/dataset/synthesize.log",
    benchmark:
        "results/benchmarks/dataset/synthesize.tsv"
    conda:
        "../envs/avdistill.yaml"
    threads: 2
    params:
        options=lookup(dpath="dataset/synthetic", within=config),
        seed=lookup(dpath="seed", within=config),
    script:
        "../workflow/scripts/synthesize_dataset.py"
