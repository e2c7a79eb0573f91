# avdistill: "Audio-Visual Model Distillation Using Acoustic Images" (Pérez et al., WACV 2020).
#
# Paths: resources/ holds the raw dataset (downloaded or synthesised); results/<stage>/...
# holds every product, results/logs/<stage>/... its log and results/benchmarks/... its
# resource usage.
from snakemake.utils import min_version

min_version("9.20")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "rules/common.smk"
include: "rules/downloads.smk"
include: "rules/dataset.smk"
include: "rules/pretrained.smk"
include: "rules/tfrecords.smk"
include: "rules/splits.smk"
include: "rules/stage1.smk"
include: "rules/stage2.smk"
include: "rules/tables.smk"


# Jobs that are quick, or need the internet (downloads: compute nodes often have none), run
# in the Snakemake process itself under a cluster executor, never through sbatch.
localrules:
    all,
    download,
    split_lists,
    location_dataset_list,
    tfrecords,
    test_stage1,
    test_stage2,
    tables,
    figures,


onstart:
    write_invocation()


rule all:
    default_target: True
    input:
        data_targets(),
        stage1_targets(),
        stage2_targets(),
        table_targets(),
