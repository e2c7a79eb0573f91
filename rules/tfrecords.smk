rule convert_tfrecords:
    input:
        dataset=raw_dataset_dir(),
    output:
        directory("results/tfrecords/{modality}/Location_{location}"),
    log:
        "results/logs/tfrecords/{modality}/Location_{location}.log",
    benchmark:
        "results/benchmarks/tfrecords/{modality}/Location_{location}.tsv"
    conda:
        "../envs/avdistill.yaml"
    threads: 2
    params:
        code=code_version("data.convert"),
    script:
        "../workflow/scripts/convert_tfrecords.py"


rule tfrecords:
    input:
        record_dirs(MODALITIES, LOCATIONS),
