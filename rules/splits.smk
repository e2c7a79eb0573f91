rule split_lists:
    input:
        records=split_record_dirs,
    output:
        training="results/lists/{split}/training.txt",
        validation="results/lists/{split}/validation.txt",
        testing="results/lists/{split}/testing.txt",
    log:
        "results/logs/lists/{split}.log",
    conda:
        "../envs/avdistill.yaml"
    params:
        roots=expand("results/tfrecords/{m}", m=MODALITIES),
        locations=lambda wildcards: split_locations(wildcards.split),
        num_samples=lookup(dpath="splits/num_samples", within=config),
        split_mode=0,
    script:
        "../workflow/scripts/split_lists.py"


rule location_dataset_list:
    input:
        records=location_record_dirs,
    output:
        dataset="results/lists/location_{location_number}/dataset.txt",
    log:
        "results/logs/lists/location_{location_number}_dataset.log",
    conda:
        "../envs/avdistill.yaml"
    params:
        code=code_version("data.lists"),
        roots=expand("results/tfrecords/{m}", m=MODALITIES),
        locations=lambda wildcards: [int(wildcards.location_number)],
        num_samples=lookup(dpath="splits/num_samples", within=config),
        split_mode=2,
    script:
        "../workflow/scripts/split_lists.py"


rule spectrogram_stats:
    input:
        training="results/lists/{split}/training.txt",
        records=audio_record_dirs,
    output:
        global_min="results/stats/{split}/global_min.npy",
        global_max="results/stats/{split}/global_max.npy",
    log:
        "results/logs/stats/{split}.log",
    benchmark:
        "results/benchmarks/stats/{split}.tsv"
    conda:
        "../envs/avdistill.yaml"
    params:
        code=code_version("data.stats"),
        audio_root="results/tfrecords/audio",
        total_length=lookup(dpath="splits/num_samples", within=config),
        resampler=lookup(dpath="loader/resampler", within=config),
    script:
        "../workflow/scripts/spectrogram_stats.py"
