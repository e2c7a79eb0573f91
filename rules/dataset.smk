# The raw dataset in resources/dataset/{matfiles,sync}: synthesised (default), or the real
# archive downloaded (source: url) or given (source: archive) and extracted safely. With
# source: local the user's extracted folder is used as it is (see raw_dataset_dir).


if config["dataset"]["source"] == "synthetic":

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
            code=code_version("data.synth"),
            options=lookup(dpath="dataset/synthetic", within=config),
            seed=lookup(dpath="seed", within=config),
        script:
            "../workflow/scripts/synthesize_dataset.py"


if config["dataset"]["source"] in ("url", "archive"):

    rule extract_dataset:
        input:
            archive=dataset_archive(),
        output:
            directory("resources/dataset"),
        log:
            "results/logs/dataset/extract.log",
        conda:
            "../envs/avdistill.yaml"
        params:
            code=code_version("fetch.download"),
            max_bytes=lookup(dpath="dataset/max_bytes", within=config, default=None),
        script:
            "../workflow/scripts/extract_dataset.py"
