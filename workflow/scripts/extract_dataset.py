from avdistill.logs import log_to

with log_to(snakemake.log[0]):
    from avdistill.fetch.download import extract_dataset

    extract_dataset(snakemake.input.archive, snakemake.output[0], snakemake.params.max_bytes)
